//! A bounded, non-validating XML reader for untrusted input, producing a small element tree with
//! line numbers.
//!
//! It is the first thing that touches bytes from a partner or a back-office: it enforces the size
//! and depth limits, refuses DTDs (so no entity expansion and no external resource can ever be
//! reached), refuses any encoding but UTF-8, and never panics. Only after it accepted a document is
//! the document handed to libxml2 for XSD validation.

use std::borrow::Cow;
use std::sync::Arc;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::ModelError;

/// Limits applied while reading untrusted XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted (the root element is depth 1).
    pub max_depth: usize,
}

impl Limits {
    /// Default size limit: 10 MB.
    pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// Default depth limit; the deepest ASW document nests 7 levels.
    pub const DEFAULT_MAX_DEPTH: usize = 32;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Limits::DEFAULT_MAX_BYTES,
            max_depth: Limits::DEFAULT_MAX_DEPTH,
        }
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
/// Rejects: more than `limits.max_bytes`, nesting deeper than `limits.max_depth`, any DOCTYPE,
/// any entity other than the five predefined ones and character references, bytes that are not
/// UTF-8 or an encoding declaration other than UTF-8, unbound namespace prefixes, and anything
/// that is not well-formed. Comments and processing instructions are skipped.
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
    namespaces: Vec<Arc<str>>,
}

fn intern(namespaces: &mut Vec<Arc<str>>, uri: &str) -> Arc<str> {
    if let Some(known) = namespaces.iter().find(|n| &***n == uri) {
        return known.clone();
    }
    let new: Arc<str> = Arc::from(uri);
    namespaces.push(new.clone());
    new
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
            namespaces: Vec::new(),
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
                    if self.skipping() {
                        continue;
                    }
                    let content = c.xml10_content();
                    self.push_text(&content, start)?;
                }
                Event::GeneralRef(r) => {
                    let resolved: Cow<'_, str> = match r.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => match resolve_predefined_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
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
                    let resolved = resolved.into_owned();
                    self.push_text(&resolved, start)?;
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
                Event::Comment(_) | Event::PI(_) => {}
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
            let line = self.line_of(offset);
            return Err(xml_error(
                "XML-DEPTH",
                line,
                format!("elements nest deeper than {}", self.limits.max_depth),
            ));
        }
        if self.root.is_some() && self.stack.is_empty() {
            let line = self.line_of(offset);
            return Err(xml_error("XML", line, "more than one root element".into()));
        }
        let namespace = match ns {
            Ok(ns) => ns,
            Err(prefix) => {
                let line = self.line_of(offset);
                return Err(xml_error(
                    "XML",
                    line,
                    format!("namespace prefix {prefix:?} is not declared"),
                ));
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
        if !build {
            // Checked as for a kept element, nothing allocated unless a value needs normalising.
            for attr in tag.attributes() {
                let attr = attr.map_err(|e| {
                    let line = self.line_of(offset);
                    xml_error("XML", line, format!("bad attribute: {e}"))
                })?;
                let qname = attr.key.into_inner();
                if qname == "xmlns" || qname.starts_with("xmlns:") {
                    continue;
                }
                if let Err(e) = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                    let line = self.line_of(offset);
                    return Err(xml_error(
                        "XML-DTD",
                        line,
                        format!("bad attribute value: {e}"),
                    ));
                }
            }
            return Ok(Frame::Skipped(offset));
        }
        let line = self.line_of(offset);
        let namespace = intern(&mut self.namespaces, namespace);
        let name = local.to_owned();
        let mut attributes = Vec::new();
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| xml_error("XML", line, format!("bad attribute: {e}")))?;
            let qname = attr.key.into_inner();
            if qname == "xmlns" || qname.starts_with("xmlns:") {
                continue;
            }
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| xml_error("XML-DTD", line, format!("bad attribute value: {e}")))?;
            attributes.push((
                attr.key.local_name().into_inner().to_owned(),
                value.into_owned(),
            ));
        }
        Ok(Frame::Built(Element {
            namespace,
            name,
            attributes,
            text: String::new(),
            children: Vec::new(),
            line,
        }))
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
        };
        assert_eq!(
            rule_and_line(parse(b"<a>0123456789</a>", &limits)).0,
            "XML-SIZE"
        );
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 3,
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
        ];
        let limits = Limits {
            max_bytes: 1000,
            max_depth: 3,
        };
        for xml in bad {
            let full = parse(xml.as_bytes(), &limits).expect_err(xml);
            let selected = parse_selected(xml.as_bytes(), &limits, &keep_b).expect_err(xml);
            assert_eq!(full, selected, "{xml}");
        }
    }
}
