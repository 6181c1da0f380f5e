//! The inline schemas of a WSDL (the IPPC ePhyto Hub's, `../shared/ephyto-hub/ephyto.wsdl`) as
//! files libxml2 compiles, with a SOAP 1.1 envelope schema of our own whose body holds any
//! element those schemas declare (checked strictly): so a whole SOAP request or answer validates
//! in one pass.

use std::path::{Path, PathBuf};

use crate::SchemaError;

/// The SOAP 1.1 envelope namespace.
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// What we need of the SOAP 1.1 envelope: an optional header of anything, a body whose children
/// are elements declared by the other schemas (strict), or a fault.
const SOAP11_XSD: &str = r###"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    targetNamespace="http://schemas.xmlsoap.org/soap/envelope/" elementFormDefault="qualified">
  <xs:element name="Envelope">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Header" minOccurs="0">
          <xs:complexType>
            <xs:sequence>
              <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
            <xs:anyAttribute namespace="##other" processContents="lax"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Body">
          <xs:complexType>
            <xs:choice>
              <xs:element ref="soap:Fault"/>
              <xs:any namespace="##other" processContents="strict" minOccurs="0" maxOccurs="unbounded"/>
            </xs:choice>
            <xs:anyAttribute namespace="##other" processContents="lax"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Fault">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="faultcode" type="xs:QName" form="unqualified"/>
        <xs:element name="faultstring" type="xs:string" form="unqualified"/>
        <xs:element name="faultactor" type="xs:anyURI" form="unqualified" minOccurs="0"/>
        <xs:element name="detail" form="unqualified" minOccurs="0">
          <xs:complexType>
            <xs:sequence>
              <xs:any namespace="##any" processContents="strict" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"###;

/// The `xs:schema` elements of a WSDL's text, each with its target namespace.
pub fn inline_schemas(wsdl: &str) -> Vec<(String, String)> {
    let mut schemas = Vec::new();
    let mut rest = wsdl;
    while let Some(start) = rest.find("<xs:schema ") {
        let Some(end) = rest[start..]
            .find("</xs:schema>")
            .map(|e| start + e + "</xs:schema>".len())
        else {
            break;
        };
        let schema = &rest[start..end];
        let namespace = schema
            .find("targetNamespace=\"")
            .map(|i| i + "targetNamespace=\"".len())
            .and_then(|at| Some(schema[at..at + schema[at..].find('"')?].to_owned()))
            .unwrap_or_default();
        schemas.push((namespace, schema.to_owned()));
        rest = &rest[end..];
    }
    schemas
}

/// Writes each inline schema of `wsdl` (its text) to its own file in `dir`, imports pointed at
/// the files of the others, the SOAP 1.1 envelope schema beside them, and an entry schema that
/// imports them all; returns the entry's path, for [`SchemaSet::from_file`](crate::SchemaSet::from_file).
pub fn write_soap_schemas(wsdl: &str, dir: &Path) -> Result<PathBuf, SchemaError> {
    let schemas = inline_schemas(wsdl);
    let mut names: Vec<(String, String)> = schemas
        .iter()
        .enumerate()
        .map(|(i, (ns, _))| (ns.clone(), format!("wsdl-{i}.xsd")))
        .collect();
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|source| SchemaError::Write {
            dir: dir.to_owned(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| SchemaError::Write {
        dir: dir.to_owned(),
        source,
    })?;
    for ((_, schema), (_, file)) in schemas.iter().zip(&names) {
        let mut schema = schema.clone();
        for (ns, target) in &names {
            schema = schema.replace(
                &format!("<xs:import namespace=\"{ns}\"/>"),
                &format!("<xs:import namespace=\"{ns}\" schemaLocation=\"{target}\"/>"),
            );
        }
        write(dir.join(file), &schema)?;
    }
    write(dir.join("soap11.xsd"), SOAP11_XSD)?;
    names.push((SOAP11.to_owned(), "soap11.xsd".to_owned()));
    let imports: String = names
        .iter()
        .map(|(ns, file)| format!("  <xs:import namespace=\"{ns}\" schemaLocation=\"{file}\"/>\n"))
        .collect();
    let entry = dir.join("entry.xsd");
    write(
        entry.clone(),
        &format!(
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n{imports}</xs:schema>\n"
        ),
    )?;
    Ok(entry)
}

/// The `soapAction` of each operation of the WSDL's SOAP binding, by operation name (they are
/// not always `<namespace>IDeliveryService/<operation>`: the hub's
/// `AdvancedAcknowledgeEnvelopeReceipt` is `.../NegativeAcknowledgeEnvelopeReceipt`).
pub fn soap_actions(wsdl: &str) -> std::collections::BTreeMap<String, String> {
    let mut actions = std::collections::BTreeMap::new();
    let Some(binding) = wsdl.find("<wsdl:binding ") else {
        return actions;
    };
    let mut rest = &wsdl[binding..];
    let attribute = |text: &str, name: &str| -> Option<String> {
        let at = text.find(name)? + name.len();
        Some(text[at..at + text[at..].find('"')?].to_owned())
    };
    while let Some(op) = rest.find("<wsdl:operation name=\"") {
        rest = &rest[op..];
        let Some(name) = attribute(rest, "<wsdl:operation name=\"") else {
            break;
        };
        let end = rest.find("</wsdl:operation>").unwrap_or(rest.len());
        if let Some(action) = attribute(&rest[..end], "soapAction=\"") {
            actions.insert(name, action);
        }
        rest = &rest[end..];
    }
    actions
}
