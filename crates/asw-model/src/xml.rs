//! A bounded, non-validating XML reader for untrusted input, producing a small element tree with
//! line numbers.
//!
//! It is the first thing that touches bytes from a partner or a back-office: it enforces the size
//! and depth limits, refuses DTDs (so no entity expansion and no external resource can ever be
//! reached), refuses any encoding but UTF-8, and never panics. Only after it accepted a document is
//! the document handed to libxml2 for XSD validation.

use std::collections::HashSet;
use std::sync::Arc;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::name::{NamespaceError, ResolveResult};
use quick_xml::reader::NsReader;

use crate::ModelError;

/// Limits applied while reading untrusted XML.
///
/// Together they bound the work any document can cause in the reader and, since nothing reaches
/// libxml2 or libxmlsec1 before the reader accepted it, in the C libraries too: every count that
/// makes one of them slower than linear (attributes on one element, namespaces in scope, nodes)
/// is capped here. Text is not limited beyond `max_bytes`: a text node of megabytes (a base64
/// attachment) costs linear time everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted (the root element is depth 1).
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations not counted.
    pub max_attributes: usize,
    /// Most namespace declarations (`xmlns`, `xmlns:p`) on one element.
    pub max_namespaces: usize,
    /// Most namespace declarations in the whole document (so also in scope at any point).
    pub max_namespaces_total: usize,
    /// Longest qualified name (prefix, colon and local name) of an element or attribute, in
    /// bytes; a namespace declaration's `xmlns:prefix` included.
    pub max_name_bytes: usize,
    /// Longest attribute value as written (namespace URIs included), in bytes.
    pub max_value_bytes: usize,
    /// Most nodes in the document: elements, attributes, namespace declarations, comments,
    /// processing instructions and CDATA sections together.
    pub max_nodes: usize,
}

impl Limits {
    /// Default size limit: 10 MB.
    pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// Default depth limit; the deepest ASW document nests 7 levels.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
    /// Default attributes per element; ASW elements have at most one, XML-DSig's two.
    pub const DEFAULT_MAX_ATTRIBUTES: usize = 32;
    /// Default namespace declarations per element; the hub's documents declare 7 on the root.
    pub const DEFAULT_MAX_NAMESPACES: usize = 32;
    /// Default namespace declarations per document; the hub's signed documents have 8. All
    /// may be in scope at once, and libxml2, libxmlsec1 and quick-xml look a prefix up by a scan
    /// of those in scope: 64 keeps a document of a million lookups near the cost of a valid one
    /// of the same size.
    pub const DEFAULT_MAX_NAMESPACES_TOTAL: usize = 64;
    /// Default name length; the longest ASW or XML-DSig name is about 26 bytes with its prefix.
    pub const DEFAULT_MAX_NAME_BYTES: usize = 256;
    /// Default attribute value length; the longest ASW value is an algorithm URI of 60 bytes.
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 4096;
    /// Default node count; a 9.8 MB e-Form D of 18,451 items has about 305,000 (a node every
    /// 32 bytes: no document of real content within the default size comes near). libxml2 and
    /// libxmlsec1 take time per node: at this count the worst accepted shape costs about what a
    /// valid e-Form D of the size limit does (docs/PERFORMANCE.md, figure 8).
    pub const DEFAULT_MAX_NODES: usize = 500_000;

    /// Every default, usable in constants: `Limits { max_bytes: 4096, ..Limits::DEFAULT }`.
    pub const DEFAULT: Limits = Limits {
        max_bytes: Limits::DEFAULT_MAX_BYTES,
        max_depth: Limits::DEFAULT_MAX_DEPTH,
        max_attributes: Limits::DEFAULT_MAX_ATTRIBUTES,
        max_namespaces: Limits::DEFAULT_MAX_NAMESPACES,
        max_namespaces_total: Limits::DEFAULT_MAX_NAMESPACES_TOTAL,
        max_name_bytes: Limits::DEFAULT_MAX_NAME_BYTES,
        max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
        max_nodes: Limits::DEFAULT_MAX_NODES,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// An element of a parsed document: namespace, local name, attributes, text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI, empty when the element is in no namespace (shared between elements).
    pub namespace: Arc<str>,
    /// Local name.
    pub name: String,
    /// Attributes as (local name, value); namespace declarations are not included.
    pub attributes: Vec<(String, String)>,
    /// Character data directly inside this element (entity references resolved). In an
    /// element with children, white space between them is not kept (ASW documents have no
    /// mixed content).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// 1-based line of the start tag.
    pub line: u32,
}

impl Element {
    /// The first child with this namespace and local name.
    pub fn child(&self, namespace: &str, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| &*c.namespace == namespace && c.name == name)
    }

    /// Every child with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| &*c.namespace == namespace && c.name == name)
    }

    /// Follows a path of children in one namespace, e.g. `["Transport", "DepartureDate"]`.
    pub fn path(&self, namespace: &str, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |e, name| e.child(namespace, name))
    }

    /// The text of this element with surrounding XML white space removed.
    pub fn trimmed(&self) -> &str {
        self.text
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
    }

    /// The value of an attribute without namespace.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True if this element has this namespace and local name.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        &*self.namespace == namespace && self.name == name
    }
}

/// Parses untrusted bytes into an element tree, enforcing `limits`.
///
/// Rejects: more than `limits.max_bytes` (rule `XML-SIZE`), nesting deeper than
/// `limits.max_depth` (`XML-DEPTH`), more attributes on an element than `limits.max_attributes`
/// (`XML-ATTRIBUTES`), more namespace declarations on an element or in the document than
/// `limits.max_namespaces` / `limits.max_namespaces_total` (`XML-NAMESPACES`), a namespace
/// declaration not written literally, with a reference, tab or line break in its value
/// (`XML-NAMESPACE`: libxml2 would read another URI than this reader), a name longer than
/// `limits.max_name_bytes` (`XML-NAME`), an attribute value longer than
/// `limits.max_value_bytes` (`XML-VALUE`), more nodes than `limits.max_nodes` (`XML-NODES`), any
/// DOCTYPE and any entity other than the five predefined ones and character references
/// (`XML-DTD`), bytes that are not UTF-8 or an encoding declaration other than UTF-8
/// (`XML-ENCODING`), unbound namespace prefixes, and anything that is not well-formed (`XML`).
/// Comments and processing instructions are skipped (and counted as nodes).
///
/// Time is linear in the size of the document, whatever its shape.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Element, ModelError> {
    let text = accepted_text(bytes, limits)?;
    TreeBuilder::new(text, limits, &|_: &str, _: &str| true)
        .run()
        .map(|selection| selection.root)
}

/// What [`parse_selected`] kept of a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// The root element with its attributes and text, and only the selected children (each
    /// with its whole subtree), in document order.
    pub root: Element,
    /// For each child kept in `root.children`, its 0-based position among all element children
    /// of the root.
    pub positions: Vec<usize>,
    /// How many element children the root has in all.
    pub root_children: usize,
    /// Selected elements found deeper, outside the kept subtrees (each with its whole subtree),
    /// in document order.
    pub nested: Vec<Element>,
}

impl Selection {
    /// True if `element` (one of `root.children`) is the last element child of the root.
    pub fn is_last_root_child(&self, element: &Element) -> bool {
        self.root
            .children
            .iter()
            .zip(&self.positions)
            .any(|(child, &position)| {
                std::ptr::eq(child, element) && position + 1 == self.root_children
            })
    }
}

/// Checks untrusted bytes exactly as [`parse`] does (same limits, same refusals, same errors),
/// but builds only the elements `select(namespace, local_name)` picks, each with its whole
/// subtree: children of the root, and elements anywhere else outside a kept subtree (returned in
/// [`Selection::nested`]). The rest of the document is read and checked without allocating.
///
/// For callers that need a few parts of a large document, such as the envelope header and the
/// signature, and would otherwise pay for a tree of the whole business content.
pub fn parse_selected(
    bytes: &[u8],
    limits: &Limits,
    select: &dyn Fn(&str, &str) -> bool,
) -> Result<Selection, ModelError> {
    let text = accepted_text(bytes, limits)?;
    TreeBuilder::new(text, limits, select).run()
}

/// The size and encoding checks, and the text without a byte-order mark.
fn accepted_text<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, ModelError> {
    if bytes.len() > limits.max_bytes {
        return Err(xml_error(
            "XML-SIZE",
            1,
            format!(
                "document is {} bytes, the limit is {}",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = line_at(bytes, e.valid_up_to());
            return Err(xml_error(
                "XML-ENCODING",
                line,
                format!("not UTF-8 at byte {}", e.valid_up_to()),
            ));
        }
    };
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn xml_error(rule: &'static str, line: u32, message: String) -> ModelError {
    ModelError::Xml {
        rule,
        line,
        message,
    }
}

fn line_at(bytes: &[u8], offset: usize) -> u32 {
    let end = offset.min(bytes.len());
    let newlines = bytes[..end].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

/// An open element: built into the tree, or only checked.
enum Frame {
    /// Kept, with what was read of it so far.
    Built(Element),
    /// Not selected: read and checked, not kept. The byte offset of its start tag names it in
    /// errors.
    Skipped(usize),
}

struct TreeBuilder<'a> {
    text: &'a str,
    limits: &'a Limits,
    select: &'a dyn Fn(&str, &str) -> bool,
    /// Line number at `counted_to`.
    line: u32,
    counted_to: usize,
    stack: Vec<Frame>,
    root: Option<Element>,
    positions: Vec<usize>,
    root_children: usize,
    nested: Vec<Element>,
    /// Namespace URIs seen so far: a document uses a handful, shared by all its elements.
    namespaces: Namespaces,
    /// Nodes counted so far (see [`Limits::max_nodes`]).
    nodes: usize,
    /// Namespace declarations counted so far.
    declarations: usize,
}

/// The namespace URIs of a document, each allocated once.
#[derive(Default)]
struct Namespaces {
    /// The URI returned last: most elements are in their previous sibling's namespace.
    last: Option<Arc<str>>,
    /// Every URI seen (at most [`Limits::max_namespaces_total`]), found in constant time.
    all: HashSet<Arc<str>>,
}

impl Namespaces {
    fn intern(&mut self, uri: &str) -> Arc<str> {
        if let Some(last) = &self.last
            && &**last == uri
        {
            return last.clone();
        }
        let found = match self.all.get(uri) {
            Some(known) => known.clone(),
            None => {
                let new: Arc<str> = Arc::from(uri);
                self.all.insert(new.clone());
                new
            }
        };
        self.last = Some(found.clone());
        found
    }
}

/// The local name of the start tag at `offset` (for messages about skipped elements).
fn local_name_at(text: &str, offset: usize) -> &str {
    let tag = text.get(offset..).unwrap_or("");
    let tag = tag.strip_prefix('<').unwrap_or(tag);
    let end = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(tag.len());
    let qname = &tag[..end];
    qname.rsplit(':').next().unwrap_or(qname)
}

impl<'a> TreeBuilder<'a> {
    fn new(text: &'a str, limits: &'a Limits, select: &'a dyn Fn(&str, &str) -> bool) -> Self {
        TreeBuilder {
            text,
            limits,
            select,
            line: 1,
            counted_to: 0,
            stack: Vec::new(),
            root: None,
            positions: Vec::new(),
            root_children: 0,
            nested: Vec::new(),
            namespaces: Namespaces::default(),
            nodes: 0,
            declarations: 0,
        }
    }

    /// The line of byte `offset`, counting forward from the last position asked for.
    fn line_of(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.text.len());
        if offset >= self.counted_to {
            let added = self.text.as_bytes()[self.counted_to..offset]
                .iter()
                .filter(|&&b| b == b'\n');
            self.line = self
                .line
                .saturating_add(u32::try_from(added.count()).unwrap_or(u32::MAX));
            self.counted_to = offset;
            self.line
        } else {
            line_at(self.text.as_bytes(), offset)
        }
    }

    fn error(
        &mut self,
        rule: &'static str,
        offset: usize,
        message: impl Into<String>,
    ) -> ModelError {
        let line = self.line_of(offset);
        xml_error(rule, line, message.into())
    }

    /// True if character data at the current position is not kept (inside a skipped element).
    fn skipping(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Skipped(_)))
    }

    fn run(mut self) -> Result<Selection, ModelError> {
        // The reader lives apart from the builder: resolved namespaces borrow it while the
        // builder takes the element.
        let mut reader = NsReader::from_str(self.text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        // In scope there are never more declarations than in the whole document: the bound
        // keeps quick-xml's prefix lookups (a scan of the declarations in scope) short.
        reader
            .resolver_mut()
            .set_max_namespace_bindings(self.limits.max_namespaces_total);
        loop {
            let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let (ns, event) = match reader.read_resolved_event() {
                Ok((ns, event)) => {
                    let ns = match ns {
                        ResolveResult::Bound(ns) => Ok(ns.into_inner()),
                        ResolveResult::Unbound => Ok(""),
                        ResolveResult::Unknown(prefix) => Err(prefix),
                    };
                    (ns, event)
                }
                Err(quick_xml::Error::Namespace(NamespaceError::TooManyBindings(_))) => {
                    return Err(self.too_many_declarations(start));
                }
                Err(e) => {
                    let at = usize::try_from(reader.error_position()).unwrap_or(start);
                    return Err(self.error("XML", at, format!("not well-formed: {e}")));
                }
            };
            match event {
                Event::Start(start_tag) => {
                    let frame = self.open(ns, &start_tag, start)?;
                    self.stack.push(frame);
                }
                Event::Empty(start_tag) => {
                    let frame = self.open(ns, &start_tag, start)?;
                    self.close(frame, start)?;
                }
                Event::End(_) => {
                    let Some(frame) = self.stack.pop() else {
                        return Err(self.error("XML", start, "end tag without start tag"));
                    };
                    self.close(frame, start)?;
                }
                Event::Text(t) => {
                    if self.skipping() {
                        continue;
                    }
                    let content = t.xml10_content();
                    self.push_text(&content, start)?;
                }
                Event::CData(c) => {
                    self.count_node(start)?;
                    if self.skipping() {
                        continue;
                    }
                    let content = c.xml10_content();
                    self.push_text(&content, start)?;
                }
                Event::GeneralRef(r) => {
                    let mut utf8 = [0; 4];
                    let resolved: &str = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.encode_utf8(&mut utf8),
                        Ok(None) => match resolve_predefined_entity(&r) {
                            Some(s) => s,
                            None => {
                                return Err(self.error(
                                    "XML-DTD",
                                    start,
                                    format!("entity &{}; is not allowed", &*r),
                                ));
                            }
                        },
                        Err(e) => {
                            return Err(self.error(
                                "XML",
                                start,
                                format!("bad character reference: {e}"),
                            ));
                        }
                    };
                    if self.skipping() {
                        continue;
                    }
                    self.push_text(resolved, start)?;
                }
                Event::DocType(_) => {
                    return Err(self.error("XML-DTD", start, "DOCTYPE is not allowed"));
                }
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding()
                        && !encoding.eq_ignore_ascii_case("UTF-8")
                    {
                        return Err(self.error(
                            "XML-ENCODING",
                            start,
                            format!("encoding {encoding:?} is not accepted, only UTF-8"),
                        ));
                    }
                }
                Event::Comment(_) | Event::PI(_) => self.count_node(start)?,
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let name = match open {
                Frame::Built(element) => element.name.clone(),
                Frame::Skipped(offset) => local_name_at(self.text, *offset).to_owned(),
            };
            let message = format!("document ends inside <{name}> (truncated?)");
            let end = self.text.len();
            return Err(self.error("XML", end, message));
        }
        match self.root.take() {
            Some(root) => Ok(Selection {
                root,
                positions: self.positions,
                root_children: self.root_children,
                nested: self.nested,
            }),
            None => Err(xml_error("XML", 1, "no root element".into())),
        }
    }

    /// A child starts: white space seen so far in its parent was indentation.
    fn drop_blank_parent_text(&mut self) {
        if let Some(Frame::Built(parent)) = self.stack.last_mut()
            && is_blank(&parent.text)
        {
            parent.text.clear();
        }
    }

    fn open(
        &mut self,
        ns: Result<&str, String>,
        tag: &quick_xml::events::BytesStart<'_>,
        offset: usize,
    ) -> Result<Frame, ModelError> {
        self.drop_blank_parent_text();
        if self.stack.len() >= self.limits.max_depth {
            let message = format!("elements nest deeper than {}", self.limits.max_depth);
            return Err(self.error("XML-DEPTH", offset, message));
        }
        if self.root.is_some() && self.stack.is_empty() {
            return Err(self.error("XML", offset, "more than one root element"));
        }
        self.count_node(offset)?;
        self.check_name(tag.name().into_inner(), "element", offset)?;
        let namespace = match ns {
            Ok(ns) => ns,
            Err(prefix) => {
                let message = format!("namespace prefix {prefix:?} is not declared");
                return Err(self.error("XML", offset, message));
            }
        };
        let local = tag.local_name().into_inner();
        let build = match self.stack.last() {
            None => true,
            Some(Frame::Built(_)) if self.stack.len() > 1 => true,
            Some(Frame::Built(_)) | Some(Frame::Skipped(_)) => (self.select)(namespace, local),
        };
        if self.stack.len() == 1 {
            self.root_children += 1;
        }
        // Every attribute is checked, kept or not, with the same rules in the same order; a
        // skipped element allocates nothing unless a value needs normalising.
        let mut attributes = Vec::new();
        let (mut plain, mut declarations) = (0usize, 0usize);
        for attr in tag.attributes() {
            let attr =
                attr.map_err(|e| self.error("XML", offset, format!("bad attribute: {e}")))?;
            let qname = attr.key.into_inner();
            self.count_node(offset)?;
            self.check_name(qname, "attribute", offset)?;
            if attr.value.len() > self.limits.max_value_bytes {
                let message = format!(
                    "attribute {qname} has a value of {} bytes, the limit is {}",
                    attr.value.len(),
                    self.limits.max_value_bytes
                );
                return Err(self.error("XML-VALUE", offset, message));
            }
            if qname == "xmlns" || qname.starts_with("xmlns:") {
                declarations += 1;
                self.declarations += 1;
                if declarations > self.limits.max_namespaces {
                    let message = format!(
                        "more than {} namespace declarations on one element",
                        self.limits.max_namespaces
                    );
                    return Err(self.error("XML-NAMESPACES", offset, message));
                }
                if self.declarations > self.limits.max_namespaces_total {
                    return Err(self.too_many_declarations(offset));
                }
                // quick-xml binds the value as written, libxml2 the value after references
                // and white space are replaced: only a literal value means the same to both.
                if let Some(c) = attr
                    .value
                    .bytes()
                    .find(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
                {
                    let what = if c == b'&' {
                        "a reference"
                    } else {
                        "a tab or line break"
                    };
                    let message = format!(
                        "namespace declaration {qname} holds {what}: write the URI as it is"
                    );
                    return Err(self.error("XML-NAMESPACE", offset, message));
                }
                continue;
            }
            plain += 1;
            if plain > self.limits.max_attributes {
                let message = format!(
                    "more than {} attributes on one element",
                    self.limits.max_attributes
                );
                return Err(self.error("XML-ATTRIBUTES", offset, message));
            }
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| self.error("XML-DTD", offset, format!("bad attribute value: {e}")))?;
            if build {
                attributes.push((
                    attr.key.local_name().into_inner().to_owned(),
                    value.into_owned(),
                ));
            }
        }
        if !build {
            return Ok(Frame::Skipped(offset));
        }
        let line = self.line_of(offset);
        Ok(Frame::Built(Element {
            namespace: self.namespaces.intern(namespace),
            name: local.to_owned(),
            attributes,
            text: String::new(),
            children: Vec::new(),
            line,
        }))
    }

    /// Counts one more node against [`Limits::max_nodes`].
    fn count_node(&mut self, offset: usize) -> Result<(), ModelError> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            let message = format!(
                "more than {} elements, attributes and other nodes",
                self.limits.max_nodes
            );
            return Err(self.error("XML-NODES", offset, message));
        }
        Ok(())
    }

    /// Checks a qualified name against [`Limits::max_name_bytes`].
    fn check_name(&mut self, qname: &str, what: &str, offset: usize) -> Result<(), ModelError> {
        if qname.len() > self.limits.max_name_bytes {
            let shown: String = qname.chars().take(40).collect();
            let message = format!(
                "{what} name {shown}... is {} bytes long, the limit is {}",
                qname.len(),
                self.limits.max_name_bytes
            );
            return Err(self.error("XML-NAME", offset, message));
        }
        Ok(())
    }

    fn too_many_declarations(&mut self, offset: usize) -> ModelError {
        let message = format!(
            "more than {} namespace declarations in the document",
            self.limits.max_namespaces_total
        );
        self.error("XML-NAMESPACES", offset, message)
    }

    fn close(&mut self, frame: Frame, offset: usize) -> Result<(), ModelError> {
        let Frame::Built(mut element) = frame else {
            return Ok(());
        };
        // The element is complete: give back what growing by doubling over-allocated (an item
        // with 9 children would otherwise keep room for 16; on a document of thousands of items
        // that is more than the rest of the tree).
        element.children.shrink_to_fit();
        element.attributes.shrink_to_fit();
        element.text.shrink_to_fit();
        if self.stack.len() == 1 {
            self.positions.push(self.root_children.saturating_sub(1));
        }
        match self.stack.last_mut() {
            Some(Frame::Built(parent)) => {
                parent.children.push(element);
            }
            Some(Frame::Skipped(_)) => self.nested.push(element),
            None => {
                if self.root.is_some() {
                    return Err(self.error("XML", offset, "more than one root element"));
                }
                self.root = Some(element);
            }
        }
        Ok(())
    }

    fn push_text(&mut self, content: &str, offset: usize) -> Result<(), ModelError> {
        match self.stack.last_mut() {
            Some(Frame::Built(element)) => {
                // Indentation between child elements is not content: not keeping it saves
                // most of the reader's allocations on pretty-printed documents.
                if element.children.is_empty() || !is_blank(content) {
                    element.text.push_str(content);
                }
                Ok(())
            }
            Some(Frame::Skipped(_)) => Ok(()),
            None if content
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
                .is_empty() =>
            {
                Ok(())
            }
            None => Err(self.error("XML", offset, "text outside the root element")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_default(xml: &str) -> Result<Element, ModelError> {
        parse(xml.as_bytes(), &Limits::default())
    }

    fn rule_and_line(result: Result<Element, ModelError>) -> (&'static str, u32) {
        match result {
            Err(ModelError::Xml { rule, line, .. }) => (rule, line),
            other => panic!("expected an XML error, got {other:?}"),
        }
    }

    #[test]
    fn builds_tree_with_namespaces_lines_and_entities() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a:R xmlns:a=\"urn:a\" xmlns=\"urn:d\">\n  <a:X u=\"K&amp;G\">1 &lt; 2 &#x41;<![CDATA[<z>]]></a:X>\n  <Y/>\n</a:R>";
        let root = parse_default(xml).expect("valid");
        assert!(root.is("urn:a", "R"));
        assert_eq!(root.line, 2);
        assert_eq!(root.text, "", "indentation between children is not kept");
        let x = root.child("urn:a", "X").expect("X");
        assert_eq!(x.text, "1 < 2 A<z>");
        assert_eq!(x.attribute("u"), Some("K&G"));
        assert_eq!(x.line, 3);
        let y = root.child("urn:d", "Y").expect("Y");
        assert_eq!(y.line, 4);
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\n<lolz>&lol2;</lolz>";
        assert_eq!(rule_and_line(parse_default(laughs)), ("XML-DTD", 2));
        let xxe = "<r>&xxe;</r>";
        assert_eq!(rule_and_line(parse_default(xxe)).0, "XML-DTD");
    }

    #[test]
    fn enforces_size_and_depth() {
        let limits = Limits {
            max_bytes: 10,
            max_depth: 3,
            ..Limits::default()
        };
        assert_eq!(
            rule_and_line(parse(b"<a>0123456789</a>", &limits)).0,
            "XML-SIZE"
        );
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 3,
            ..Limits::default()
        };
        assert!(parse(b"<a><b><c/></b></a>", &limits).is_ok());
        assert_eq!(
            rule_and_line(parse(b"<a><b>\n<c><d/></c></b></a>", &limits)),
            ("XML-DEPTH", 2)
        );
        let deep = "<a>".repeat(100_000);
        assert_eq!(rule_and_line(parse_default(&deep)).0, "XML-DEPTH");
    }

    #[test]
    fn rejects_malformed_truncated_and_foreign_encodings() {
        assert_eq!(rule_and_line(parse_default("<a>\n<b></a>")).0, "XML");
        assert_eq!(rule_and_line(parse_default("<a>\n<b>text")), ("XML", 2));
        assert_eq!(rule_and_line(parse_default("")).0, "XML");
        assert_eq!(rule_and_line(parse_default("<a/><b/>")).0, "XML");
        assert_eq!(rule_and_line(parse_default("<p:a/>")).0, "XML");
        assert_eq!(
            rule_and_line(parse(b"<a>\n\xff\xfe</a>", &Limits::default())),
            ("XML-ENCODING", 2)
        );
        let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>";
        assert_eq!(rule_and_line(parse_default(latin1)).0, "XML-ENCODING");
    }

    fn keep_b(_: &str, name: &str) -> bool {
        name == "B"
    }

    #[test]
    fn selected_parse_keeps_only_selected_subtrees() {
        let xml = "<r:R xmlns:r=\"urn:r\" a=\"1\">\n<r:A><r:B x=\"y\">in A</r:B></r:A>\n<r:B><r:C>c</r:C></r:B>\n<r:D/>\n</r:R>";
        let selection = parse_selected(xml.as_bytes(), &Limits::default(), &keep_b).expect("valid");
        assert!(selection.root.is("urn:r", "R"));
        assert_eq!(selection.root.attribute("a"), Some("1"));
        assert_eq!(selection.root_children, 3);
        assert_eq!(selection.positions, [1]);
        let [b] = selection.root.children.as_slice() else {
            panic!("one kept child, got {:?}", selection.root.children);
        };
        assert_eq!((b.line, b.children[0].text.as_str()), (3, "c"));
        assert!(!selection.is_last_root_child(b), "r:D follows it");
        let [nested] = selection.nested.as_slice() else {
            panic!("one nested element, got {:?}", selection.nested);
        };
        assert_eq!((nested.line, nested.text.as_str()), (2, "in A"));
        assert_eq!(nested.attribute("x"), Some("y"));

        let last = "<R><A/><B/></R>";
        let selection =
            parse_selected(last.as_bytes(), &Limits::default(), &keep_b).expect("valid");
        assert!(selection.is_last_root_child(&selection.root.children[0]));
    }

    /// Skipped elements are checked exactly as kept ones: same rule, same line, same message.
    #[test]
    fn selected_parse_refuses_what_parse_refuses() {
        let bad = [
            "<R>\n<A>&xxe;</A></R>",
            "<R>\n<A a=\"&xxe;\"/></R>",
            "<R>\n<A a=\"1\" a=\"2\"/></R>",
            "<R>\n<p:A/></R>",
            "<R>\n<A><C>\n</R>",
            "<R>\n<A>\n<C>text",
            "<R><A><C><D/></C></A></R>",
            "<R><A>&#xD800;</A></R>",
            "<R><A/></R>\n<R/>",
            "<R><A/></R>\ntext",
            "<!DOCTYPE R><R/>",
            "<R><A><!-- a -- b --></A></R>",
            "<R>\n<A a=\"1\" b=\"2\" c=\"3\"/></R>",
            "<R>\n<A xmlns:a=\"u\" xmlns:b=\"u\" xmlns:c=\"u\"/></R>",
            "<R xmlns:a=\"u\" xmlns:b=\"u\"><A xmlns:c=\"u\"/>\n<A xmlns:d=\"u\"/></R>",
            "<R>\n<A xmlns:a=\"urn:&#x61;\"/></R>",
            "<R>\n<Abcdefghijklmnopq/></R>",
            "<R>\n<A abcdefghijklmnopq=\"1\"/></R>",
            "<R>\n<A a=\"abcdefghijklmnopq\"/></R>",
            "<R><A/><A/><A/><A/>\n<A/><A/><A/><A/></R>",
            "<R><A><!----><!----><?p?><![CDATA[]]><!----><!----><!----></A></R>",
        ];
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 3,
            max_attributes: 2,
            max_namespaces: 2,
            max_namespaces_total: 3,
            max_name_bytes: 16,
            max_value_bytes: 16,
            max_nodes: 8,
        };
        for xml in bad {
            let full = parse(xml.as_bytes(), &limits).expect_err(xml);
            let selected = parse_selected(xml.as_bytes(), &limits, &keep_b).expect_err(xml);
            assert_eq!(full, selected, "{xml}");
        }
    }

    /// A document of about `bytes` bytes: `shape` repeated inside `<r>...</r>`.
    fn repeated(shape: &str, bytes: usize) -> String {
        let mut xml = String::with_capacity(bytes + 16);
        xml.push_str("<r>");
        while xml.len() + shape.len() + 4 <= bytes {
            xml.push_str(shape);
        }
        xml.push_str("</r>");
        xml
    }

    /// An element with `n` attributes written `prefix0="v" prefix1="v"...`.
    fn with_attributes(name: &str, prefix: &str, n: usize) -> String {
        let mut xml = format!("<r>\n<{name}");
        for i in 0..n {
            xml.push_str(&format!(" {prefix}{i}=\"urn:v\""));
        }
        xml.push_str("/>\n</r>");
        xml
    }

    #[test]
    fn refuses_many_attributes_on_one_element() {
        // The shape libxml2 2.9.14 needs seconds for (40,000 attributes: 14.6 s).
        let many = with_attributes("a", "x", 40_000);
        assert_eq!(rule_and_line(parse_default(&many)), ("XML-ATTRIBUTES", 2));
        let at_limit = with_attributes("a", "x", Limits::DEFAULT_MAX_ATTRIBUTES);
        let root = parse_default(&at_limit).expect("at the limit");
        assert_eq!(
            root.children[0].attributes.len(),
            Limits::DEFAULT_MAX_ATTRIBUTES
        );
        let over = with_attributes("a", "x", Limits::DEFAULT_MAX_ATTRIBUTES + 1);
        assert_eq!(rule_and_line(parse_default(&over)), ("XML-ATTRIBUTES", 2));
        // Duplicates are found among many attributes too (quick-xml hashes the names).
        let limits = Limits {
            max_attributes: 50_000,
            ..Limits::default()
        };
        let duplicate = many.replace("/>", " x7=\"urn:v\"/>");
        assert_eq!(rule_and_line(parse(duplicate.as_bytes(), &limits)).0, "XML");
    }

    #[test]
    fn refuses_many_namespace_declarations() {
        let on_one = with_attributes("a", "xmlns:p", 40_000);
        assert_eq!(rule_and_line(parse_default(&on_one)), ("XML-NAMESPACES", 2));
        let over = with_attributes("a", "xmlns:p", Limits::DEFAULT_MAX_NAMESPACES + 1);
        assert_eq!(rule_and_line(parse_default(&over)), ("XML-NAMESPACES", 2));
        let at_limit = with_attributes("a", "xmlns:p", Limits::DEFAULT_MAX_NAMESPACES);
        assert!(parse_default(&at_limit).is_ok());
        // One declaration on each of many elements: the document's total.
        let spread = repeated("<a xmlns=\"urn:v\"/>\n", 1_000_000);
        let line = u32::try_from(Limits::DEFAULT_MAX_NAMESPACES_TOTAL).expect("small") + 1;
        assert_eq!(
            rule_and_line(parse_default(&spread)),
            ("XML-NAMESPACES", line)
        );
        // Nested declarations all in scope; quick-xml's own bound on bindings in scope gives the
        // same refusal when it is reached first.
        let limits = Limits {
            max_namespaces: 1000,
            max_namespaces_total: 10,
            ..Limits::default()
        };
        assert_eq!(
            rule_and_line(parse(on_one.as_bytes(), &limits)),
            ("XML-NAMESPACES", 2)
        );
        let mut nested = String::new();
        for level in 0..8 {
            nested.push_str(&format!("<e{level}"));
            for i in 0..Limits::DEFAULT_MAX_NAMESPACES_TOTAL / 8 {
                nested.push_str(&format!(" xmlns:p{level}x{i}=\"urn:{level}:{i}\""));
            }
            nested.push_str(">\n");
        }
        // Every declaration allowed in scope, each element looking up the one declared first.
        let used = "<p0x0:a p0x0:b=\"1\"/>".repeat(10_000);
        let closing: String = (0..8).rev().map(|l| format!("</e{l}>")).collect();
        let deep = format!("{nested}{used}{closing}");
        let root = parse_default(&deep).expect("the most declarations in scope are accepted");
        let innermost = (0..7).fold(&root, |e, _| &e.children[0]);
        assert_eq!(innermost.children.len(), 10_000);
        assert_eq!(&*innermost.children[0].namespace, "urn:0:0");
        let one_more = deep.replacen("<e7", "<e7 xmlns:extra=\"urn:x\"", 1);
        assert_eq!(
            rule_and_line(parse_default(&one_more)),
            ("XML-NAMESPACES", 8)
        );
    }

    /// The reader and libxml2 must read the same namespace: no declaration that libxml2 would
    /// turn into another URI.
    #[test]
    fn refuses_namespace_declarations_that_are_not_literal() {
        for declaration in [
            "xmlns:a=\"urn:&#x61;\"",
            "xmlns:a=\"urn:aswhub:asw:envelope&#58;1\"",
            "xmlns:a=\"urn:&amp;\"",
            "xmlns=\"urn:&#x61;\"",
            "xmlns:a=\"urn:a\n\"",
            "xmlns:a=\"urn:a\t\"",
        ] {
            let xml = format!("<a:r xmlns:a=\"urn:a\">\n<a:x {declaration}/></a:r>");
            assert_eq!(
                rule_and_line(parse_default(&xml)),
                ("XML-NAMESPACE", 2),
                "{declaration}"
            );
        }
        // Ordinary attributes may hold references: both readers resolve them the same way.
        let root = parse_default("<r a=\"&#x61;&amp;\"/>").expect("valid");
        assert_eq!(root.attribute("a"), Some("a&"));
    }

    #[test]
    fn refuses_long_names_and_values() {
        let long = "n".repeat(100_000);
        let element = format!("<r>\n<{long}/></r>");
        assert_eq!(rule_and_line(parse_default(&element)), ("XML-NAME", 2));
        let attribute = format!("<r>\n<a {long}=\"1\"/></r>");
        assert_eq!(rule_and_line(parse_default(&attribute)), ("XML-NAME", 2));
        let prefix = format!("<r>\n<{long}:a xmlns:{long}=\"urn:v\"/></r>");
        assert_eq!(rule_and_line(parse_default(&prefix)), ("XML-NAME", 2));
        let end = format!("<r>\n<a>\n</{long}></r>");
        assert_eq!(rule_and_line(parse_default(&end)).0, "XML");
        let at_limit = "n".repeat(Limits::DEFAULT_MAX_NAME_BYTES);
        assert!(parse_default(&format!("<r><{at_limit}/></r>")).is_ok());

        let value = "v".repeat(5_000_000);
        let xml = format!("<r>\n<a v=\"{value}\"/></r>");
        assert_eq!(rule_and_line(parse_default(&xml)), ("XML-VALUE", 2));
        let namespace = format!("<r>\n<a xmlns=\"urn:{value}\"/></r>");
        assert_eq!(rule_and_line(parse_default(&namespace)), ("XML-VALUE", 2));
        // A value of entity references: limited as written, not as resolved.
        let references = "&amp;".repeat(1_000_000);
        let xml = format!("<r>\n<a v=\"{references}\"/></r>");
        assert_eq!(rule_and_line(parse_default(&xml)), ("XML-VALUE", 2));
        let references = "&#x41;".repeat(Limits::DEFAULT_MAX_VALUE_BYTES / 6);
        let root = parse_default(&format!("<r v=\"{references}\"/>")).expect("within the limit");
        assert_eq!(
            root.attribute("v").map(str::len),
            Some(references.len() / 6)
        );
    }

    #[test]
    fn refuses_many_nodes() {
        let tiny = repeated("<a/>", Limits::DEFAULT_MAX_BYTES);
        assert_eq!(rule_and_line(parse_default(&tiny)).0, "XML-NODES");
        for shape in ["<!---->", "<?p?>", "<a><![CDATA[]]></a>", "<a b=\"\"/>"] {
            let many = repeated(shape, Limits::DEFAULT_MAX_BYTES);
            assert_eq!(
                rule_and_line(parse_default(&many)).0,
                "XML-NODES",
                "{shape}"
            );
        }
        let limits = Limits {
            max_nodes: 5,
            ..Limits::default()
        };
        assert!(parse(b"<r a=\"1\" xmlns=\"urn:v\"><!----><b/></r>", &limits).is_ok());
        assert_eq!(
            rule_and_line(parse(
                b"<r a=\"1\" xmlns=\"urn:v\"><!----><b/>\n<c/></r>",
                &limits
            )),
            ("XML-NODES", 2)
        );
    }

    /// Large text stays accepted: an e-Phyto attachment is hundreds of KB of base64.
    #[test]
    fn accepts_huge_text() {
        let base64: String = "QUJD".repeat((Limits::DEFAULT_MAX_BYTES - 100) / 4);
        let xml = format!("<r>\n<pdf>{base64}</pdf></r>");
        let root = parse_default(&xml).expect("a text node of 10 MB");
        assert_eq!(root.children[0].text.len(), base64.len());
        // Character references resolve without an allocation each.
        let references = "&#x41;&lt;".repeat((Limits::DEFAULT_MAX_BYTES - 100) / 10);
        let root = parse_default(&format!("<r>{references}</r>")).expect("text of references");
        assert_eq!(root.text.len(), references.len() / 5);
        assert!(root.text.starts_with("A<A<"));
        let selection = parse_selected(xml.as_bytes(), &Limits::default(), &keep_b)
            .expect("skipped text is checked too");
        assert_eq!(selection.root_children, 1);
    }

    #[test]
    fn refuses_deep_nesting_of_any_size() {
        let deep = "<a>".repeat(Limits::DEFAULT_MAX_BYTES / 3);
        assert_eq!(rule_and_line(parse_default(&deep)), ("XML-DEPTH", 1));
        let deep = "<a>\n".repeat(Limits::DEFAULT_MAX_BYTES / 4);
        let line = u32::try_from(Limits::DEFAULT_MAX_DEPTH).expect("small") + 1;
        assert_eq!(rule_and_line(parse_default(&deep)), ("XML-DEPTH", line));
    }
}
