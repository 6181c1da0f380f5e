//! (13) The hub outbound as the number of partners grows: the same documents spread over 1, 10
//! and 100 partner queues, each count a fresh hub in a vhost of its own.
//!
//! The documents are e-Phyto certificates: their body names the importing country freely,
//! while e-Form D's allows only the ten ASEAN member states (by treaty), so the partners beyond
//! one are rows of a generated partners file (the shipped rows and bench partners with
//! ISO 3166-1 user-assigned codes, `XA`..`XZ`, `QM`..`QZ`, then others no table knows), each in
//! pull mode: what the hub sends a partner stays in its `asw.partner.out.<CC>`, where it is
//! counted.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use asw_amqp::Management;
use asw_gateway::config::HubConfig;
use asw_model::kinds::KindRegistry;
use asw_model::partners::PartnerTable;
use asw_testbed::Testbed;

use crate::cpu::CpuSample;
use crate::{
    Args, Arrivals, MemberState, Path, Row, document, publish_all, rate, start_hub, stop_hub,
};
use crate::{DocumentKind, Duration, Instant, names, partner_password, state};

/// Partner counts the figure measures; the first is the baseline of the others' ratios.
const COUNTS: [usize; 3] = [1, 10, 100];

/// `count` partner codes no partner table knows, user-assigned ones first.
pub(crate) fn bench_codes(count: usize) -> Vec<String> {
    let letters = || (b'A'..=b'Z').map(char::from);
    let preferred = letters()
        .map(|c| format!("X{c}"))
        .chain(('M'..='Z').map(|c| format!("Q{c}")))
        .chain(["AA".to_owned(), "ZZ".to_owned()]);
    let others = letters().flat_map(move |a| letters().map(move |b| format!("{a}{b}")));
    let mut codes: Vec<String> = Vec::with_capacity(count);
    for code in preferred.chain(others) {
        if codes.len() == count {
            break;
        }
        if MemberState::from_alpha2(&code).is_none() && !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// The shipped partners file with an enabled row for each of `codes`, exchanging e-Phyto over
/// the ASW's broker channel (alpha-3 `X` and the code: user-assigned, unlike any shipped row's).
pub(crate) fn partners_file(codes: &[String]) -> String {
    let mut text = include_str!("../../../schemas/partners.toml").to_owned();
    for code in codes {
        let _ = write!(
            text,
            "\n[[partner]]\ncode = \"{code}\"\nalpha3 = \"X{code}\"\nname = \"Bench partner {code}\"\nnetwork = \"bench\"\nenabled = true\nsends = [\"ephyto\", \"ephyto-ack\"]\nreceives = [\"ephyto\", \"ephyto-ack\"]\nchannel = \"asw-broker\"\n"
        );
    }
    text
}

/// Installs `text`, a partners file, in this process (the documents name its partners).
fn install(text: &str) -> anyhow::Result<()> {
    let kinds = KindRegistry::shipped()?;
    MemberState::install(&PartnerTable::parse("bench partners file", text, &kinds)?)?;
    Ok(())
}

/// Figure (13): the outbound rate and the hub's CPU per document with the documents spread over
/// each count of partners.
pub(crate) async fn partner_queues(
    args: &Args,
    testbed: &Testbed,
    config: &Path,
    dir: &Path,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let options = testbed.options();
    let management = Management::new(&options.management_url, &options.admin.0, &options.admin.1);
    let template = std::fs::read_to_string(config).context("the hub's configuration")?;
    let vn = state("VN");
    let ours = format!("url = \"{}/{}\"", options.amqp, options.vhost(vn));
    if !template.contains(&ours) {
        bail!("the hub's configuration has no broker line {ours}");
    }
    let n = args.docs;
    let mut baseline = f64::NAN;
    let mut result = Ok(());
    for count in COUNTS {
        let codes = bench_codes(count);
        let partners_text = partners_file(&codes);
        install(&partners_text)?;
        let partners: Vec<MemberState> = codes
            .iter()
            .map(|c| state_of(c))
            .collect::<anyhow::Result<_>>()?;
        let vhost = format!("{}partners-{count}", options.vhost_prefix);
        std::fs::write(
            dir.join(format!("vn/partners-{count}-file.toml")),
            partners_text,
        )?;
        let mut toml = template
            .replacen(
                "country = \"VN\"\n",
                &format!("country = \"VN\"\npartners_file = \"partners-{count}-file.toml\"\n"),
                1,
            )
            .replace(&ours, &format!("url = \"{}/{vhost}\"", options.amqp))
            .replace(
                "path = \"journal.db\"",
                &format!("path = \"partners-{count}.db\""),
            );
        for &p in &partners {
            let _ = write!(
                toml,
                "\n[partners.{p}]\nlink = \"pull\"\npassword = \"{}\"\n",
                partner_password(p)
            );
        }
        let file = dir.join(format!("vn/partners-{count}.toml"));
        std::fs::write(&file, toml)?;
        let hub_config = HubConfig::load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
        let users: Vec<String> = partners.iter().map(|&p| names::partner_user(p)).collect();
        let measured = measure(
            args,
            &management,
            &options.amqp,
            &vhost,
            &hub_config,
            &file,
            &partners,
            count,
        )
        .await;
        // Gone whatever happened: the vhost, and the generated partners' broker users.
        let admin = management.clone();
        tokio::task::spawn_blocking(move || {
            let _ = admin.delete_vhost(&vhost);
            for user in users {
                let _ = admin.delete_user(&user);
            }
        })
        .await?;
        let (took, cpu) = match measured {
            Ok(m) => m,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if count == COUNTS[0] {
            baseline = took;
        }
        rows.push(Row {
            figure: format!(
                "(13) hub outbound e-Phyto to {count} partner queue{}",
                plural(count)
            ),
            value: format!("{took:.0}/s"),
            note: format!(
                "{:.2} of the rate to {} partner; {n} documents, {} per partner",
                took / baseline,
                COUNTS[0],
                n / count
            ),
        });
        rows.push(cpu);
    }
    // The process's partner table as the hub's configuration had it.
    install(include_str!("../../../schemas/partners.toml"))?;
    result
}

/// One count: the topology applied in its own vhost, a fresh hub, the documents published and
/// counted in every partner queue; the rate and the CPU row.
#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &Args,
    management: &Management,
    amqp: &str,
    vhost: &str,
    config: &HubConfig,
    file: &Path,
    partners: &[MemberState],
    count: usize,
) -> anyhow::Result<(f64, Row)> {
    let vn = state("VN");
    let password = |u: &asw_route::User| config.broker_password(u);
    asw_amqp::apply(management, amqp, vhost, &config.topology(), &password)
        .await
        .with_context(|| format!("the topology of {count} partners in {vhost}"))?;
    let n = args.docs;
    let seed = 900_000_000 + count * 10_000_000;
    let docs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            document(
                DocumentKind::Ephyto,
                vn,
                partners[i % partners.len()],
                args.items,
                (seed + i) as u64,
            )
            .to_xml_compact()
            .map(String::into_bytes)
        })
        .collect::<Result<_, _>>()?;
    let connection = asw_amqp::connect(&format!("{amqp}/{vhost}"), "bench partners").await?;
    let mut arrivals = Vec::with_capacity(partners.len());
    for &p in partners {
        arrivals
            .push(Arrivals::start(&connection, &names::partner_out_queue(p), args.prefetch).await?);
    }
    let mut hub = start_hub(file)?;
    let hub_pid = hub.id();
    let outcome = async {
        let cpu = CpuSample::take(hub_pid);
        let started = Instant::now();
        publish_all(&connection, names::OUTBOUND_EXCHANGE, "ephyto", &docs, None).await?;
        for (i, queue) in arrivals.iter().enumerate() {
            // Partner i gets documents i, i + count, ...
            let expected = n / count + usize::from(i < n % count);
            queue.wait_for(expected, Duration::from_secs(600)).await?;
        }
        let took = rate(n, started.elapsed());
        Ok::<_, anyhow::Error>((
            took,
            cpu.row(
                &format!("(13) hub outbound, {count} partner{}", plural(count)),
                n,
                hub_pid,
            ),
        ))
    }
    .await;
    let stopped = stop_hub(&mut hub);
    for queue in arrivals {
        queue.stop().await;
    }
    let _ = connection.close().await;
    let measured = outcome?;
    stopped?;
    Ok(measured)
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn state_of(code: &str) -> anyhow::Result<MemberState> {
    MemberState::from_alpha2(code).with_context(|| format!("partner {code} is not installed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_codes_are_new_distinct_and_user_assigned_first() {
        let codes = bench_codes(100);
        assert_eq!(codes.len(), 100);
        assert_eq!(&codes[..3], ["XA", "XB", "XC"]);
        assert!(
            codes.iter().all(|c| MemberState::from_alpha2(c).is_none()),
            "{codes:?}"
        );
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert!(!codes.contains(&"TH".to_owned()) && !codes.contains(&"KR".to_owned()));
    }
}
