//! `aswctl keygen`, `sign`, `verify` and `trust check`: keys, signatures and the trust store.
//!
//! Exit codes follow the CLI contract: 0 success; 1 what was checked failed (a signature is not
//! valid, a document cannot be signed, a certificate expires soon); 2 usage or I/O error (an
//! unreadable file, a trust directory that does not load, an unusable key).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use asw_model::MemberState;
use asw_model::xml::Limits;
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_sign::{
    DEFAULT_EXPIRY_WARNING_DAYS, SignError, Signer, TrustStore, TrustedCertificate, Verifier,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Outcome;
use crate::input::{display_name, read_input};

/// Key type for `aswctl keygen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algo {
    /// RSA 2048 bits, signatures RSA-SHA256.
    Rsa,
    /// EC P-256, signatures ECDSA-SHA256.
    Ec,
}

/// Arguments of `aswctl keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Member state the key is for (alpha-2 code, e.g. VN).
    #[arg(long, value_name = "CC")]
    country: MemberState,
    /// Key type.
    #[arg(long, value_enum, default_value_t = Algo::Rsa)]
    algo: Algo,
    /// Folder to write `<cc>-key.pem` and `<cc>-cert.pem` to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Validity of the self-signed certificate, in days.
    #[arg(long, value_name = "N", default_value_t = 730, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// Arguments of `aswctl sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Private key, PEM (unencrypted).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Certificate of the key, PEM.
    #[arg(long, value_name = "CERT.pem")]
    cert: PathBuf,
    /// Document to sign; `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the signed document; `-` (the default) is stdout.
    #[arg(short, long, value_name = "OUT", default_value = "-")]
    output: PathBuf,
}

/// Arguments of `aswctl verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Trust directory: one folder per member state with its PEM certificates.
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Signed documents; `-` reads stdin.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<OffsetDateTime>,
}

/// Arguments of `aswctl trust`.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TrustCommand {
    /// List the certificates per member state with their expiry; exit 1 if any expires soon.
    Check(TrustCheckArgs),
}

/// Arguments of `aswctl trust check`.
#[derive(Debug, clap::Args)]
struct TrustCheckArgs {
    /// Trust directory: one folder per member state with its PEM certificates.
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Warn about (and fail on) certificates no longer valid within this many days.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_EXPIRY_WARNING_DAYS)]
    days: u32,
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2026-01-05T08:00:00Z: {e}"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Runs `aswctl keygen`.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<Outcome> {
    let algorithm = match args.algo {
        Algo::Rsa => KeyAlgorithm::Rsa2048,
        Algo::Ec => KeyAlgorithm::EcP256,
    };
    let generated = keygen::generate(
        args.country,
        algorithm,
        args.days,
        OffsetDateTime::now_utc(),
    )
    .context("generating the key")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let cc = args.country.lower();
    let key_path = args.out.join(format!("{cc}-key.pem"));
    let cert_path = args.out.join(format!("{cc}-cert.pem"));
    if !args.force {
        for path in [&key_path, &cert_path] {
            if path.exists() {
                bail!(
                    "{} exists; use --force to replace it (and the key it belongs to)",
                    path.display()
                );
            }
        }
    }
    write_file(&key_path, &generated.key_pem, 0o600)?;
    write_file(&cert_path, &generated.cert_pem, 0o644)?;
    // Read the certificate back through the signer: proves the pair works and gives its facts.
    let signer = Signer::new(&generated.key_pem, &generated.cert_pem)
        .context("checking the generated key")?;
    let cert = signer.certificate();
    println!(
        "{}: private key ({}), keep it secret",
        key_path.display(),
        cert.key()
    );
    println!(
        "{}: certificate {}, valid until {}, sha256 {}",
        cert_path.display(),
        cert.subject(),
        rfc3339(cert.not_after()),
        cert.fingerprint()
    );
    Ok(Outcome::Success)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` only applies to a file created here: one that existed keeps its own until set.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `aswctl sign`.
pub fn sign(args: &SignArgs) -> anyhow::Result<Outcome> {
    let key =
        std::fs::read(&args.key).with_context(|| format!("cannot read {}", args.key.display()))?;
    let cert = std::fs::read(&args.cert)
        .with_context(|| format!("cannot read {}", args.cert.display()))?;
    let signer = Signer::new(&key, &cert).with_context(|| {
        format!(
            "cannot sign with {} and {}",
            args.key.display(),
            args.cert.display()
        )
    })?;
    let input = read_input(&args.file, Limits::DEFAULT_MAX_BYTES)?;
    let signed = match signer.sign(&input) {
        Ok(signed) => signed,
        Err(e @ (SignError::Document(_) | SignError::AlreadySigned { .. })) => {
            eprintln!("{}: {}: {e}", display_name(&args.file), e.code());
            return Ok(Outcome::Failed);
        }
        Err(e) => return Err(e).context("signing"),
    };
    if args.output.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&signed)
            .and_then(|()| stdout.flush())
            .context("writing stdout")?;
    } else {
        std::fs::write(&args.output, &signed)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    Ok(Outcome::Success)
}

/// Runs `aswctl verify`.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let trust = TrustStore::load(&args.trust).context("loading the trust store")?;
    let verifier = Verifier::new(Arc::new(trust)).context("starting the verifier")?;
    // Read everything first: an unreadable file is an I/O error (exit 2), whatever else is valid.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        inputs.push((
            display_name(path),
            read_input(path, Limits::DEFAULT_MAX_BYTES)?,
        ));
    }
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let mut all_valid = true;
    for (file, bytes) in inputs {
        match verifier.verify(&bytes, now) {
            Ok(verified) => println!(
                "{file}: valid, signed by {} (certificate sha256 {}, {})",
                verified.signer(),
                verified.fingerprint(),
                verified.subject()
            ),
            Err(e) => {
                all_valid = false;
                eprintln!("{file}: {}: {e}", e.code());
            }
        }
    }
    Ok(if all_valid {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Runs `aswctl trust ...`.
pub fn trust(args: &TrustArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        TrustCommand::Check(check) => trust_check(check),
    }
}

fn trust_check(args: &TrustCheckArgs) -> anyhow::Result<Outcome> {
    let trust = TrustStore::load(&args.trust).context("loading the trust store")?;
    let now = OffsetDateTime::now_utc();
    let snapshot = trust.snapshot();
    let mut expiring = 0;
    for state in MemberState::all() {
        let certificates: Vec<&TrustedCertificate> = snapshot.for_state(state).collect();
        if certificates.is_empty() {
            println!("{state}  no certificate");
        }
        for certificate in certificates {
            let info = certificate.info();
            let days = info.days_left(now);
            let status = if info.not_after() < now {
                expiring += 1;
                format!("EXPIRED {} days ago", -days)
            } else if info.expires_within(args.days, now) {
                expiring += 1;
                format!("EXPIRES in {days} days")
            } else {
                format!("expires in {days} days")
            };
            println!(
                "{state}  {status}  not after {}  {}  {}  sha256 {}  {}",
                rfc3339(info.not_after()),
                info.key(),
                info.subject(),
                info.fingerprint(),
                certificate.path().display()
            );
        }
    }
    if expiring > 0 {
        eprintln!(
            "{expiring} certificate(s) expired or expiring within {} days",
            args.days
        );
        Ok(Outcome::Failed)
    } else {
        Ok(Outcome::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use asw_model::DocumentKind;
    use asw_model::sample::{self, SampleSpec};

    fn keygen_into(dir: &Path, country: &str, algo: Algo, days: u32) {
        let args = KeygenArgs {
            country: country.parse().expect("member state"),
            algo,
            out: dir.to_path_buf(),
            days,
            force: false,
        };
        assert_eq!(keygen(&args).expect("keygen"), Outcome::Success);
    }

    fn unsigned(from: &str, to: &str) -> Vec<u8> {
        sample::message(&SampleSpec {
            kind: DocumentKind::FormD,
            from: from.parse().expect("from"),
            to: to.parse().expect("to"),
            items: 2,
            seed: 3,
            created_at: SampleSpec::seeded_time(3),
        })
        .to_xml()
        .expect("xml")
        .into_bytes()
    }

    #[test]
    fn keygen_sign_verify_and_trust_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        keygen_into(&keys, "VN", Algo::Rsa, 730);
        keygen_into(&keys, "th", Algo::Ec, 10);
        let key_mode = std::fs::metadata(keys.join("vn-key.pem"))
            .expect("key")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&key_mode) & 0o777,
            0o600
        );
        let again = KeygenArgs {
            country: "VN".parse().expect("VN"),
            algo: Algo::Rsa,
            out: keys.clone(),
            days: 1,
            force: false,
        };
        assert!(keygen(&again).is_err(), "refuses to overwrite a key");
        // A key file that existed with a wider mode is 0600 once overwritten (--force).
        let key_file = keys.join("vn-key.pem");
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("chmod");
        let forced = KeygenArgs {
            force: true,
            days: 730,
            ..again
        };
        keygen(&forced).expect("overwrites with --force");
        let key_mode = std::fs::metadata(&key_file).expect("key").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&key_mode) & 0o777,
            0o600,
            "an existing key file is made 0600"
        );

        let trust_dir = dir.path().join("trust");
        for cc in ["VN", "TH"] {
            std::fs::create_dir_all(trust_dir.join(cc)).expect("mkdir");
            let lower = cc.to_ascii_lowercase();
            std::fs::copy(
                keys.join(format!("{lower}-cert.pem")),
                trust_dir.join(cc).join("cert.pem"),
            )
            .expect("copy");
        }

        let document = dir.path().join("formd.xml");
        std::fs::write(&document, unsigned("VN", "TH")).expect("write");
        let signed = dir.path().join("formd.signed.xml");
        let sign_args = SignArgs {
            key: keys.join("vn-key.pem"),
            cert: keys.join("vn-cert.pem"),
            file: document.clone(),
            output: signed.clone(),
        };
        assert_eq!(sign(&sign_args).expect("sign"), Outcome::Success);
        // Signing a signed document is a refusal (exit 1), not an I/O error.
        let twice = SignArgs {
            file: signed.clone(),
            output: dir.path().join("twice.xml"),
            ..sign_args
        };
        assert_eq!(sign(&twice).expect("sign twice"), Outcome::Failed);

        let verify_args = |files: Vec<PathBuf>| VerifyArgs {
            trust: trust_dir.clone(),
            files,
            at: None,
        };
        assert_eq!(
            verify(&verify_args(vec![signed.clone()])).expect("verify"),
            Outcome::Success
        );
        let tampered = dir.path().join("tampered.xml");
        let text = std::fs::read_to_string(&signed).expect("read");
        std::fs::write(
            &tampered,
            text.replacen("<asw:Receiver>TH", "<asw:Receiver>SG", 1),
        )
        .expect("write");
        assert_eq!(
            verify(&verify_args(vec![signed.clone(), tampered])).expect("verify"),
            Outcome::Failed
        );
        assert_eq!(
            verify(&verify_args(vec![document])).expect("verify unsigned"),
            Outcome::Failed
        );
        assert!(verify(&verify_args(vec![dir.path().join("missing.xml")])).is_err());
        assert!(
            verify(&VerifyArgs {
                trust: dir.path().join("no-trust"),
                files: vec![signed],
                at: None,
            })
            .is_err()
        );

        // TH's certificate is valid for 10 days only.
        let check = |days| {
            trust(&TrustArgs {
                command: TrustCommand::Check(TrustCheckArgs {
                    trust: trust_dir.clone(),
                    days,
                }),
            })
        };
        assert_eq!(check(5).expect("check"), Outcome::Success);
        assert_eq!(check(30).expect("check"), Outcome::Failed);
    }
}
