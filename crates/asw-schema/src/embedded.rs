//! The ASW XSDs, compiled into the binary and written once per process to a private directory so
//! that libxml2 can resolve their `xs:import`s from files (loading imports from memory buffers
//! resolves them against the working directory, and owned buffers are freed too early).

use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

use asw_model::kinds::KindRegistry;
use asw_model::{DocumentKind, ns};

/// The schema files, entry point first.
const FILES: &[(&str, &str)] = &[
    (
        "asw-envelope-1.xsd",
        include_str!("../../../schemas/asw-envelope-1.xsd"),
    ),
    (
        "asw-common-1.xsd",
        include_str!("../../../schemas/asw-common-1.xsd"),
    ),
    ("formd-1.xsd", include_str!("../../../schemas/formd-1.xsd")),
    ("acdd-1.xsd", include_str!("../../../schemas/acdd-1.xsd")),
    ("ack-1.xsd", include_str!("../../../schemas/ack-1.xsd")),
    (
        "formd-status-1.xsd",
        include_str!("../../../schemas/formd-status-1.xsd"),
    ),
    (
        "acdd-response-1.xsd",
        include_str!("../../../schemas/acdd-response-1.xsd"),
    ),
    (
        "sps-certificate-17.xsd",
        include_str!("../../../schemas/sps-certificate-17.xsd"),
    ),
    (
        "sps-acknowledgement-17.xsd",
        include_str!("../../../schemas/sps-acknowledgement-17.xsd"),
    ),
    (
        "sps-ram-21.xsd",
        include_str!("../../../schemas/sps-ram-21.xsd"),
    ),
    (
        "sps-udt-21.xsd",
        include_str!("../../../schemas/sps-udt-21.xsd"),
    ),
];

/// Where a set of schema files lies, entry point included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSet {
    entry: PathBuf,
}

/// The schemas could not be written or compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Writing the embedded schemas to disk failed.
    #[error("cannot write the embedded schemas to {dir}: {source}")]
    Write {
        /// Target directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// libxml2 could not compile the schema.
    #[error("cannot compile schema {entry}: {message}")]
    Compile {
        /// The entry-point XSD.
        entry: PathBuf,
        /// libxml2's messages.
        message: String,
    },
}

impl SchemaSet {
    /// The schemas built into this binary, `asw-envelope-1.xsd` (the ASW message) being the
    /// entry point (written once per process to a temporary directory
    /// named after their content, so concurrent processes and versions never mix).
    ///
    /// The entry point is a schema written beside them that imports the envelope and the XSDs of
    /// every kind this process knows ([`asw_model::DocumentKind::all`]): the shipped ones and
    /// those a hub installed from its kinds directory ([`install_kinds`]), so that the
    /// envelope's body is checked strictly against its kind's XSD.
    pub fn embedded() -> Result<SchemaSet, SchemaError> {
        let envelope = SchemaSet::envelope()?;
        let dir = envelope.entry.parent().unwrap_or(Path::new(".")).to_owned();
        let wrapper = kinds_wrapper(&dir)?;
        let name = format!("aswhub-kinds-{:016x}.xsd", fnv(wrapper.bytes()));
        let path = dir.join(&name);
        let write = || -> std::io::Result<()> {
            if std::fs::read_to_string(&path).is_ok_and(|existing| existing == wrapper) {
                return Ok(());
            }
            let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, &wrapper)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| SchemaError::Write {
            dir: dir.clone(),
            source,
        })?;
        Ok(SchemaSet { entry: path })
    }

    /// The envelope schema alone (`asw-envelope-1.xsd`, which imports the six ASW document
    /// schemas), as built into this binary.
    pub fn envelope() -> Result<SchemaSet, SchemaError> {
        static DIR: OnceLock<Result<PathBuf, (PathBuf, std::io::ErrorKind, String)>> =
            OnceLock::new();
        let result = DIR.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("aswhub-schemas-{:016x}", content_hash()));
            write_files(&dir)
                .map(|()| dir.clone())
                .map_err(|e| (dir, e.kind(), e.to_string()))
        });
        match result {
            Ok(dir) => Ok(SchemaSet {
                entry: dir.join(FILES[0].0),
            }),
            Err((dir, kind, message)) => Err(SchemaError::Write {
                dir: dir.clone(),
                source: std::io::Error::new(*kind, message.clone()),
            }),
        }
    }

    /// One of the schemas built into this binary as the entry point (`sps-certificate-17.xsd`
    /// for a bare e-Phyto certificate), with the files it imports beside it.
    pub fn embedded_entry(name: &str) -> Result<SchemaSet, SchemaError> {
        let envelope = SchemaSet::envelope()?;
        if !FILES.iter().any(|(file, _)| *file == name) {
            return Err(SchemaError::Compile {
                entry: PathBuf::from(name),
                message: "no such schema is built into this binary".into(),
            });
        }
        let dir = envelope.entry.parent().unwrap_or(Path::new("."));
        Ok(SchemaSet {
            entry: dir.join(name),
        })
    }

    /// The schema in one file (its imports resolved from files beside it) as the entry point.
    pub fn from_file(entry: &Path) -> SchemaSet {
        SchemaSet {
            entry: entry.to_owned(),
        }
    }

    /// Schemas in a directory of files, `asw-envelope-1.xsd` being the entry point.
    pub fn from_dir(dir: &Path) -> SchemaSet {
        SchemaSet {
            entry: dir.join(FILES[0].0),
        }
    }

    /// The entry-point XSD.
    pub fn entry(&self) -> &Path {
        &self.entry
    }
}

/// FNV-1a over every file name and content.
fn content_hash() -> u64 {
    fnv(FILES
        .iter()
        .flat_map(|(name, text)| name.bytes().chain(text.bytes())))
}

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Directories holding the XSDs of installed kinds (a kinds directory's parent), searched
/// before the embedded schemas.
static DIRS: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Reads a kinds directory (`schemas/kinds/` or a deployment's own), adds its kinds to this
/// process's ([`DocumentKind::install`]) and its parent directory to where their XSDs are found.
/// A hub or `aswctl` calls it at start-up; the validators compiled afterwards know the kinds.
pub fn install_kinds(kinds_dir: &Path) -> Result<Vec<DocumentKind>, asw_model::ModelError> {
    let registry = KindRegistry::load_dir(kinds_dir)?;
    let schemas = kinds_dir.parent().unwrap_or(Path::new(".")).to_owned();
    // The directory and the kinds are added under one lock, which the entry schema is written
    // under too: it never sees a kind without the directory of its XSD.
    let mut dirs = DIRS.write().unwrap_or_else(|e| e.into_inner());
    let installed = DocumentKind::install(&registry)?;
    if !dirs.contains(&schemas) {
        dirs.push(schemas);
    }
    Ok(installed)
}

/// The entry schema: the envelope and the XSDs of every known kind whose namespace the envelope
/// does not import already (one version per namespace: the first listed).
fn kinds_wrapper(embedded: &Path) -> Result<String, SchemaError> {
    let dirs = DIRS.read().unwrap_or_else(|e| e.into_inner());
    let mut imported: Vec<String> = DocumentKind::ALL
        .iter()
        .map(|k| k.root_element().0.to_owned())
        .collect();
    imported.push(ns::ENVELOPE.to_owned());
    let location = |path: &Path| escape_attr(&path.display().to_string());
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- Written by aswhub: the envelope and every registered kind's XSD. -->\n\
         <xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         targetNamespace=\"urn:aswhub:kinds\">\n",
    );
    out.push_str(&format!(
        "  <xs:import namespace=\"{}\" schemaLocation=\"{}\"/>\n",
        ns::ENVELOPE,
        location(&embedded.join(FILES[0].0))
    ));
    for kind in DocumentKind::all() {
        let def = kind.def();
        for version in &def.versions {
            let namespace = &def.root.namespace;
            if imported.contains(namespace) {
                continue;
            }
            let Some(xsd) = version.xsd.first() else {
                continue;
            };
            let found = dirs
                .iter()
                .map(|d| d.join(xsd))
                .find(|p| p.is_file())
                .or_else(|| {
                    FILES
                        .iter()
                        .any(|(f, _)| f == xsd)
                        .then(|| embedded.join(xsd))
                });
            // Installing checked that the XSD was there; one that has gone since (a removed
            // deployment directory) leaves its kind out, and a body of that kind then fails the
            // strict wildcard: refused, never accepted unchecked.
            let Some(path) = found else {
                continue;
            };
            out.push_str(&format!(
                "  <xs:import namespace=\"{}\" schemaLocation=\"{}\"/>\n",
                escape_attr(namespace),
                location(&path)
            ));
            imported.push(namespace.clone());
        }
    }
    out.push_str("</xs:schema>\n");
    Ok(out)
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

fn write_files(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in FILES {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == *text) {
            continue;
        }
        // Write to a unique name then rename, so a concurrent process never reads half a file.
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}
