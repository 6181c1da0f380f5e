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
    /// The versions of kinds read side by side whose XSD is not the one `entry` compiles for
    /// their namespace, each with an entry schema of its own.
    versions: Vec<VersionEntry>,
}

/// One version of a kind and the entry schema its documents are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionEntry {
    /// The kind.
    pub(crate) kind: DocumentKind,
    /// The version, as its kind's file lists it.
    pub(crate) version: String,
    /// The entry schema: the envelope, this version's XSD, the other kinds'.
    pub(crate) entry: PathBuf,
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
    /// envelope's body is checked strictly against its kind's XSD. A namespace is imported with
    /// one XSD (its kind's first version's); a version read side by side whose XSD is another
    /// (a MIG upgrade: the same namespace, another content) gets an entry schema of its own,
    /// which imports that XSD instead, and the validator checks a document against the entry
    /// schema of the version its header names.
    pub fn embedded() -> Result<SchemaSet, SchemaError> {
        let envelope = SchemaSet::envelope()?;
        let dir = envelope.entry.parent().unwrap_or(Path::new(".")).to_owned();
        let plan = kinds_plan(&dir);
        let entry = write_wrapper(&dir, &plan.wrapper(None))?;
        let mut versions = Vec::new();
        let mut written: Vec<(&str, &str, PathBuf)> = Vec::new();
        for other in &plan.others {
            let known = written
                .iter()
                .find(|(ns, xsd, _)| *ns == other.namespace && *xsd == other.xsd)
                .map(|(_, _, path)| path.clone());
            let path = match known {
                Some(path) => path,
                None => {
                    let path = write_wrapper(&dir, &plan.wrapper(Some(other)))?;
                    written.push((&other.namespace, &other.xsd, path.clone()));
                    path
                }
            };
            versions.push(VersionEntry {
                kind: other.kind,
                version: other.version.clone(),
                entry: path,
            });
        }
        Ok(SchemaSet { entry, versions })
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
                versions: Vec::new(),
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
            versions: Vec::new(),
        })
    }

    /// The schema in one file (its imports resolved from files beside it) as the entry point.
    pub fn from_file(entry: &Path) -> SchemaSet {
        SchemaSet {
            entry: entry.to_owned(),
            versions: Vec::new(),
        }
    }

    /// Schemas in a directory of files, `asw-envelope-1.xsd` being the entry point.
    pub fn from_dir(dir: &Path) -> SchemaSet {
        SchemaSet {
            entry: dir.join(FILES[0].0),
            versions: Vec::new(),
        }
    }

    /// The entry-point XSD.
    pub fn entry(&self) -> &Path {
        &self.entry
    }

    /// The versions with an entry schema of their own (see [`SchemaSet::embedded`]).
    pub(crate) fn versions(&self) -> &[VersionEntry] {
        &self.versions
    }
}

/// A name part no other writer uses at the same time: the process id and a counter, as threads
/// of one process (a hub's workers) write the same entry schema at once.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
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

/// Directories holding the XSDs of installed kinds, searched before the embedded schemas: for
/// each kinds directory installed, a snapshot of the XSDs of its parent taken at install time
/// (see [`snapshot`]), with the directory it was taken of.
static DIRS: RwLock<Vec<Installed>> = RwLock::new(Vec::new());

/// One installed deployment's XSDs.
struct Installed {
    /// Where the validators read them: this process's copy, which nobody removes.
    snapshot: PathBuf,
    /// The deployment's directory they were copied from (named in errors).
    original: PathBuf,
}

/// How deep under a deployment's schemas directory XSDs are copied.
const SNAPSHOT_DEPTH: usize = 4;

/// Copies every `.xsd` under `schemas` (relative paths kept, so their imports of each other
/// resolve) into a directory beside the embedded schemas named by the copies' content, and
/// returns it. The hub validates with the XSDs as they were when it read its kinds: a file
/// edited or a directory removed afterwards (a test's temporary deployment) changes nothing in a
/// running process, and a validator compiled later never finds a file gone in the middle.
fn snapshot(schemas: &Path, embedded: &Path) -> std::io::Result<PathBuf> {
    fn walk(dir: &Path, rel: &Path, depth: usize, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = rel.join(entry.file_name());
            if path.is_dir() && depth < SNAPSHOT_DEPTH {
                walk(&path, &name, depth + 1, out);
            } else if path.extension().is_some_and(|x| x == "xsd")
                && let (Some(name), Ok(text)) = (name.to_str(), std::fs::read_to_string(&path))
            {
                out.push((name.to_owned(), text));
            }
        }
    }
    let mut files = Vec::new();
    walk(schemas, Path::new(""), 0, &mut files);
    files.sort();
    let hash = fnv(files
        .iter()
        .flat_map(|(name, text)| name.bytes().chain([0]).chain(text.bytes())));
    let dir = embedded.join(format!("installed-{hash:016x}"));
    write_named(&dir, files.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
    Ok(dir)
}

/// `message` with each installed snapshot's path replaced by the directory it was copied from.
pub(crate) fn name_originals(message: String) -> String {
    let dirs = DIRS.read().unwrap_or_else(|e| e.into_inner());
    dirs.iter().fold(message, |m, d| {
        m.replace(
            &d.snapshot.display().to_string(),
            &d.original.display().to_string(),
        )
    })
}

/// Reads a kinds directory (`schemas/kinds/` or a deployment's own), adds its kinds to this
/// process's ([`DocumentKind::install`]) and its parent directory to where their XSDs are found.
/// A hub or `aswctl` calls it at start-up; the validators compiled afterwards know the kinds.
pub fn install_kinds(kinds_dir: &Path) -> Result<Vec<DocumentKind>, asw_model::ModelError> {
    let registry = KindRegistry::load_dir(kinds_dir)?;
    let original = kinds_dir.parent().unwrap_or(Path::new(".")).to_owned();
    let io_error = |e: std::io::Error| asw_model::ModelError::Data {
        file: original.display().to_string(),
        line: 0,
        key: String::new(),
        message: format!("cannot copy the XSDs for validation: {e}"),
    };
    let embedded = SchemaSet::envelope().map_err(|e| io_error(std::io::Error::other(e)))?;
    let embedded = embedded.entry.parent().unwrap_or(Path::new(".")).to_owned();
    let snapshot = snapshot(&original, &embedded).map_err(io_error)?;
    // The directory and the kinds are added under one lock, which the entry schema is written
    // under too: it never sees a kind without the directory of its XSD.
    let mut dirs = DIRS.write().unwrap_or_else(|e| e.into_inner());
    let installed = DocumentKind::install(&registry)?;
    if !dirs.iter().any(|d| d.snapshot == snapshot) {
        dirs.push(Installed { snapshot, original });
    }
    Ok(installed)
}

/// What the entry schemas import: beyond the envelope (which imports the built-in kinds' own
/// namespaces), one XSD per namespace of the other known kinds (the first version found of the
/// first kind listing it), and the versions whose XSD differs from their namespace's.
struct Plan {
    /// The envelope schema.
    envelope: PathBuf,
    /// Namespace and XSD of every namespace the envelope does not import.
    imports: Vec<(String, PathBuf)>,
    /// The versions checked against another XSD than their namespace's.
    others: Vec<OtherVersion>,
}

/// A version of a kind whose XSD is not the one its namespace is imported with.
struct OtherVersion {
    kind: DocumentKind,
    version: String,
    namespace: String,
    /// The XSD's name, as the kind's file gives it.
    xsd: String,
    /// Where it was found; `None` for an XSD gone since the kind was installed (a removed
    /// deployment directory): its entry schema then leaves the namespace out, and a body of that
    /// version fails the strict wildcard, refused (but for a built-in kind's namespace, which
    /// the envelope imports itself).
    path: Option<PathBuf>,
}

fn kinds_plan(embedded: &Path) -> Plan {
    let dirs = DIRS.read().unwrap_or_else(|e| e.into_inner());
    let find = |xsd: &str| {
        dirs.iter()
            .map(|d| d.snapshot.join(xsd))
            .find(|p| p.is_file())
            .or_else(|| {
                FILES
                    .iter()
                    .any(|(f, _)| *f == xsd)
                    .then(|| embedded.join(xsd))
            })
    };
    // The namespaces the envelope imports, with the XSD it imports each with: the built-in
    // kinds', as shipped (`asw-envelope-1.xsd` names the same files).
    let mut chosen: Vec<(String, String)> = KindRegistry::shipped()
        .map(|shipped| {
            DocumentKind::ALL
                .iter()
                .filter_map(|k| shipped.get(k.as_str()))
                .filter_map(|def| {
                    let xsd = def.written_version().xsd.first()?;
                    Some((def.root.namespace.clone(), xsd.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut imports = Vec::new();
    let mut others = Vec::new();
    let kinds = DocumentKind::all();
    // First the XSD of each namespace, then the versions that differ from it.
    for kind in &kinds {
        let def = kind.def();
        let namespace = &def.root.namespace;
        if chosen.iter().any(|(ns, _)| ns == namespace) {
            continue;
        }
        // Installing checked that the XSDs were there; one that has gone since leaves its
        // version to the next (and a namespace none is found for, its kind out: refused).
        let found = def.versions.iter().find_map(|version| {
            let xsd = version.xsd.first()?;
            find(xsd).map(|path| (xsd.clone(), path))
        });
        if let Some((xsd, path)) = found {
            chosen.push((namespace.clone(), xsd));
            imports.push((namespace.clone(), path));
        }
    }
    for kind in kinds {
        let def = kind.def();
        let namespace = &def.root.namespace;
        for version in &def.versions {
            let Some(xsd) = version.xsd.first() else {
                continue;
            };
            let same = chosen.iter().any(|(ns, x)| ns == namespace && x == xsd);
            if !same {
                others.push(OtherVersion {
                    kind,
                    version: version.version.clone(),
                    namespace: namespace.clone(),
                    xsd: xsd.clone(),
                    path: find(xsd),
                });
            }
        }
    }
    Plan {
        envelope: embedded.join(FILES[0].0),
        imports,
        others,
    }
}

impl Plan {
    /// The entry schema: the envelope and every namespace's XSD; for `other`, its XSD first in
    /// place of its namespace's (imported first, it is the one libxml2 keeps when the envelope
    /// imports the namespace again: a built-in kind's new version).
    fn wrapper(&self, other: Option<&OtherVersion>) -> String {
        let import = |out: &mut String, namespace: &str, path: &Path| {
            out.push_str(&format!(
                "  <xs:import namespace=\"{}\" schemaLocation=\"{}\"/>\n",
                escape_attr(namespace),
                escape_attr(&path.display().to_string())
            ));
        };
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!-- Written by aswhub: the envelope and every registered kind's XSD. -->\n\
             <xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
             targetNamespace=\"urn:aswhub:kinds\">\n",
        );
        if let Some(OtherVersion {
            namespace,
            path: Some(path),
            ..
        }) = other
        {
            import(&mut out, namespace, path);
        }
        import(&mut out, ns::ENVELOPE, &self.envelope);
        for (namespace, path) in &self.imports {
            if other.is_none_or(|o| &o.namespace != namespace) {
                import(&mut out, namespace, path);
            }
        }
        out.push_str("</xs:schema>\n");
        out
    }
}

/// Writes an entry schema beside the embedded ones, named after its content; returns its path.
fn write_wrapper(dir: &Path, wrapper: &str) -> Result<PathBuf, SchemaError> {
    let name = format!("aswhub-kinds-{:016x}.xsd", fnv(wrapper.bytes()));
    let path = dir.join(&name);
    let write = || -> std::io::Result<()> {
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == wrapper) {
            return Ok(());
        }
        let tmp = dir.join(format!("{name}.{}.tmp", unique()));
        std::fs::write(&tmp, wrapper)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| SchemaError::Write {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(path)
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

fn write_files(dir: &Path) -> std::io::Result<()> {
    write_named(dir, FILES.iter().copied())
}

/// Writes each `(relative name, text)` under `dir`, leaving a file that already holds the text.
fn write_named<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == text) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Write to a unique name then rename, so a concurrent process never reads half a file.
        let tmp = path.with_extension(format!("{}.tmp", unique()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}
