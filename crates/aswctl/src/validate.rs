//! `aswctl validate`: check documents against the schemas and business rules.
//!
//! The root element picks the schema: an ASW message (`asw:Message`, and anything unknown) goes
//! through the message validator (schemas and business rules); a bare e-Phyto certificate or
//! acknowledgement (a kind whose file under `schemas/kinds/` says `bare = true`) through the XSD
//! its kind file names (`sps-certificate-17.xsd`, `sps-acknowledgement-17.xsd`).

use std::path::PathBuf;

use anyhow::Context;
use asw_model::kinds::{KindDef, KindRegistry};
use asw_model::ns;
use asw_model::xml::{self, Limits};
use asw_schema::{DocumentValidator, Problem, SchemaSet, Validator};
use serde::Serialize;

use crate::Outcome;
use crate::input::{display_name, read_input};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `FILE:LINE: RULE-ID message` lines on stderr.
    Text,
    /// One JSON array on stdout.
    Json,
}

/// Arguments of `aswctl validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files to validate; `-` reads stdin.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// A kinds directory (a deployment's `schemas/kinds/`, its XSDs in the parent) whose kinds
    /// join the shipped ones.
    #[arg(long)]
    kinds: Option<PathBuf>,
    /// Largest document accepted, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_BYTES)]
    max_bytes: usize,
    /// Deepest element nesting accepted.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_DEPTH)]
    max_depth: usize,
    /// Most attributes on one element (namespace declarations not counted).
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_ATTRIBUTES)]
    max_attributes: usize,
    /// Most namespace declarations on one element.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_NAMESPACES)]
    max_namespaces: usize,
    /// Most namespace declarations in a document.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_NAMESPACES_TOTAL)]
    max_namespaces_total: usize,
    /// Longest element or attribute name (with its prefix), in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_NAME_BYTES)]
    max_name_bytes: usize,
    /// Longest attribute value as written, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_VALUE_BYTES)]
    max_value_bytes: usize,
    /// Most elements, attributes and other nodes in a document.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_NODES)]
    max_nodes: usize,
}

#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver: Option<String>,
    problems: Vec<Problem>,
}

/// Runs `aswctl validate`.
pub fn run(args: &ValidateArgs) -> anyhow::Result<Outcome> {
    // The same limits as the hub's `[limits]`, so what passes here passes the hub's reader.
    let limits = Limits {
        max_bytes: args.max_bytes,
        max_depth: args.max_depth,
        max_attributes: args.max_attributes,
        max_namespaces: args.max_namespaces,
        max_namespaces_total: args.max_namespaces_total,
        max_name_bytes: args.max_name_bytes,
        max_value_bytes: args.max_value_bytes,
        max_nodes: args.max_nodes,
    };
    if let Some(dir) = &args.kinds {
        asw_schema::install_kinds(dir)
            .with_context(|| format!("installing the kinds of {}", dir.display()))?;
    }
    let mut validator = Validator::with_schemas(&SchemaSet::embedded()?, limits)
        .context("loading the ASW schemas")?;
    // Read everything first: an unreadable file is a usage/I-O error (exit 2), whatever else is valid.
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        inputs.push((display_name(path), read_input(path, args.max_bytes)?));
    }
    // The kinds that also travel bare (e-Phyto) are recognised by their root element.
    let kinds = KindRegistry::shipped().context("reading the shipped kinds")?;
    let mut bare = BareValidators::new(limits);
    let mut reports = Vec::with_capacity(inputs.len());
    for (file, bytes) in inputs {
        let bare_kind = asw_schema::root_element(&bytes, &limits)
            .ok()
            .and_then(|root| kinds.by_root(&root.namespace, &root.name))
            .filter(|kind| kind.bare);
        if let Some(kind) = bare_kind {
            reports.push(bare.validate(kind, file, &bytes)?);
            continue;
        }
        let report = match validator.validate(&bytes) {
            Ok(valid) => {
                let h = valid.header();
                FileReport {
                    file,
                    valid: true,
                    kind: Some(h.kind.to_string()),
                    sender: Some(h.sender.to_string()),
                    receiver: Some(h.receiver.to_string()),
                    problems: Vec::new(),
                }
            }
            Err(problems) => FileReport {
                file,
                valid: false,
                kind: None,
                sender: None,
                receiver: None,
                problems,
            },
        };
        reports.push(report);
    }
    match args.format {
        Format::Text => {
            for r in &reports {
                if r.valid {
                    match (&r.sender, &r.receiver) {
                        (None, None) => {
                            println!("{}: valid {}", r.file, r.kind.as_deref().unwrap_or("?"));
                        }
                        (sender, receiver) => println!(
                            "{}: valid {} {} -> {}",
                            r.file,
                            r.kind.as_deref().unwrap_or("?"),
                            sender.as_deref().unwrap_or("?"),
                            receiver.as_deref().unwrap_or("?")
                        ),
                    }
                }
                for p in &r.problems {
                    eprintln!("{}:{}: {} {}", r.file, p.line, p.rule, p.message);
                }
            }
        }
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&reports).context("serialising the report")?
            );
        }
    }
    Ok(if reports.iter().all(|r| r.valid) {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// One validator per bare kind, compiled when first needed.
struct BareValidators {
    limits: Limits,
    compiled: Vec<(String, DocumentValidator)>,
}

impl BareValidators {
    fn new(limits: Limits) -> BareValidators {
        BareValidators {
            limits,
            compiled: Vec::new(),
        }
    }

    fn validate(
        &mut self,
        kind: &KindDef,
        file: String,
        bytes: &[u8],
    ) -> anyhow::Result<FileReport> {
        let at = match self
            .compiled
            .iter()
            .position(|(wire, _)| *wire == kind.wire)
        {
            Some(at) => at,
            None => {
                // The version written is the one read: side-by-side versions of a bare kind
                // would need the version from the document itself.
                let xsd = &kind.written_version().xsd[0];
                let schemas = SchemaSet::embedded_entry(xsd)?;
                let v = DocumentValidator::with_schemas(&schemas, self.limits)
                    .with_context(|| format!("loading the {} schema", kind.wire))?;
                self.compiled.push((kind.wire.clone(), v));
                self.compiled.len() - 1
            }
        };
        Ok(match self.compiled[at].1.validate(bytes) {
            Ok(_) => {
                let (sender, receiver) = certificate_countries(bytes, &self.limits);
                FileReport {
                    file,
                    valid: true,
                    kind: Some(kind.wire.clone()),
                    sender,
                    receiver,
                    problems: Vec::new(),
                }
            }
            Err(problems) => FileReport {
                file,
                valid: false,
                kind: None,
                sender: None,
                receiver: None,
                problems,
            },
        })
    }
}

/// The exporting and importing countries a valid certificate names, if it names them.
fn certificate_countries(bytes: &[u8], limits: &Limits) -> (Option<String>, Option<String>) {
    let Ok(selection) = xml::parse_selected(bytes, limits, &|namespace: &str, name: &str| {
        namespace == ns::SPS_CERTIFICATE && name == "SPSConsignment"
    }) else {
        return (None, None);
    };
    let country = |element: &str| {
        selection
            .root
            .child(ns::SPS_CERTIFICATE, "SPSConsignment")
            .and_then(|c| c.path(ns::SPS_RAM, &[element, "ID"]))
            .map(|id| id.trimmed().to_owned())
            .filter(|id| !id.is_empty())
    };
    (country("ExportSPSCountry"), country("ImportSPSCountry"))
}
