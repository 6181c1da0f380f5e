//! The aswhub signature profile, checked on the bounded reader's element tree before any
//! cryptography runs: exactly one `ds:Signature`, the last child of the root element, holding
//! `SignedInfo`, `SignatureValue` and `KeyInfo` (no `Object`); exclusive c14n; RSA-SHA256 or
//! ECDSA-SHA256; exactly one `Reference`, with `URI=""`, the transforms enveloped-signature then
//! exclusive c14n, and SHA-256; exactly one X.509 certificate in `KeyInfo/X509Data`.
//!
//! Everything else is refused, so that what libxmlsec1 verifies is the whole document and
//! nothing but the whole document (no signature wrapping, no weak algorithm, no external or
//! same-document reference).

use asw_model::ns;
use asw_model::xml::{Element, Selection};

use crate::VerifyError;
use crate::algorithm::{SignatureAlgorithm, uri, weakness};

/// What the profile check extracted from the signature.
#[derive(Debug)]
pub(crate) struct SignatureParts {
    /// Line of the `ds:Signature` start tag.
    pub line: u32,
    /// The `SignatureMethod`.
    pub algorithm: SignatureAlgorithm,
    /// The DER bytes of the one `X509Certificate`.
    pub certificate_der: Vec<u8>,
}

/// The elements verification and signing read: the envelope header and every `ds:Signature`
/// (for [`asw_model::xml::parse_selected`]; the rest of the document is checked, not kept).
pub(crate) fn select(namespace: &str, name: &str) -> bool {
    (namespace == uri::DSIG && name == "Signature")
        || (namespace == ns::ENVELOPE && name == "Header")
}

/// Checks the signature of a message, read with [`select`], against the profile.
pub(crate) fn check(selection: &Selection) -> Result<SignatureParts, VerifyError> {
    let signatures = find_signatures(selection);
    let (signature, parent_is_root) = match signatures.as_slice() {
        [] => return Err(VerifyError::Missing),
        [one] => *one,
        many => {
            return Err(VerifyError::Multiple {
                count: many.len(),
                lines: many
                    .iter()
                    .map(|(s, _)| s.line.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let is_last_child = selection.is_last_root_child(signature);
    if !parent_is_root || !is_last_child {
        let place = if parent_is_root {
            "is not the last child of the root element"
        } else {
            "is not a child of the root element"
        };
        return Err(wrapping(signature, format!("ds:Signature {place}")));
    }

    let [signed_info, signature_value, key_info] = signature_children(signature)?;
    let (algorithm, reference) = check_signed_info(signed_info)?;
    check_reference(reference)?;
    if signature_value.trimmed().is_empty() {
        return Err(malformed(signature_value, "SignatureValue is empty".into()));
    }
    let certificate_der = certificate(key_info)?;
    Ok(SignatureParts {
        line: signature.line,
        algorithm,
        certificate_der,
    })
}

/// Every `ds:Signature` in the document, with whether its parent is the root element.
pub(crate) fn find_signatures(selection: &Selection) -> Vec<(&Element, bool)> {
    let root = &selection.root;
    let mut found = Vec::new();
    if root.is(uri::DSIG, "Signature") {
        found.push((root, false));
    }
    let mut stack: Vec<(&Element, bool)> = root
        .children
        .iter()
        .map(|c| (c, true))
        .chain(selection.nested.iter().map(|c| (c, false)))
        .collect();
    stack.reverse();
    while let Some((element, parent_is_root)) = stack.pop() {
        if element.is(uri::DSIG, "Signature") {
            found.push((element, parent_is_root));
        }
        stack.extend(element.children.iter().rev().map(|c| (c, false)));
    }
    found.sort_by_key(|(e, _)| e.line);
    found
}

fn signature_children(signature: &Element) -> Result<[&Element; 3], VerifyError> {
    let expected = ["SignedInfo", "SignatureValue", "KeyInfo"];
    let mut found = Vec::with_capacity(3);
    for child in &signature.children {
        if child.is(uri::DSIG, "Object") {
            return Err(wrapping(
                child,
                "ds:Object is not allowed: its content would not be covered by the signature"
                    .into(),
            ));
        }
        match expected.get(found.len()) {
            Some(name) if child.is(uri::DSIG, name) => found.push(child),
            _ => {
                return Err(malformed(
                    child,
                    format!(
                        "unexpected {} in ds:Signature (expected SignedInfo, SignatureValue, KeyInfo)",
                        qualified(child)
                    ),
                ));
            }
        }
    }
    match found.as_slice() {
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(malformed(
            signature,
            format!(
                "ds:Signature has no {} (expected SignedInfo, SignatureValue, KeyInfo with the signer's certificate)",
                expected[found.len()]
            ),
        )),
    }
}

fn check_signed_info(signed_info: &Element) -> Result<(SignatureAlgorithm, &Element), VerifyError> {
    let mut children = signed_info.children.iter();
    let c14n = children
        .next()
        .filter(|c| c.is(uri::DSIG, "CanonicalizationMethod"))
        .ok_or_else(|| {
            malformed(
                signed_info,
                "SignedInfo has no CanonicalizationMethod".into(),
            )
        })?;
    let c14n_uri = algorithm_of(c14n)?;
    if c14n_uri != uri::EXC_C14N {
        return Err(algorithm_error(
            c14n,
            format!(
                "CanonicalizationMethod {c14n_uri} is not accepted; the profile requires {}",
                uri::EXC_C14N
            ),
        ));
    }
    check_c14n_parameters(c14n)?;
    let method = children
        .next()
        .filter(|c| c.is(uri::DSIG, "SignatureMethod"))
        .ok_or_else(|| malformed(signed_info, "SignedInfo has no SignatureMethod".into()))?;
    let method_uri = algorithm_of(method)?;
    let algorithm = SignatureAlgorithm::from_uri(method_uri).ok_or_else(|| {
        algorithm_error(
            method,
            format!(
                "SignatureMethod {method_uri} is not accepted{}; the profile requires {} or {}",
                weakness(method_uri),
                uri::RSA_SHA256,
                uri::ECDSA_SHA256
            ),
        )
    })?;
    if let Some(child) = method.children.first() {
        return Err(algorithm_error(
            child,
            format!(
                "SignatureMethod takes no parameters, found {}",
                qualified(child)
            ),
        ));
    }
    let mut references = Vec::new();
    for child in children {
        if !child.is(uri::DSIG, "Reference") {
            return Err(malformed(
                child,
                format!("unexpected {} in SignedInfo", qualified(child)),
            ));
        }
        references.push(child);
    }
    match references.as_slice() {
        [one] => Ok((algorithm, one)),
        [] => Err(malformed(signed_info, "SignedInfo has no Reference".into())),
        [_, second, ..] => Err(wrapping(
            second,
            format!(
                "SignedInfo has {} References; exactly one, to the whole document, is allowed",
                references.len()
            ),
        )),
    }
}

fn check_reference(reference: &Element) -> Result<(), VerifyError> {
    match reference.attribute("URI") {
        Some("") => {}
        Some(other) => {
            return Err(wrapping(
                reference,
                format!(
                    "Reference URI {other:?} is not allowed; only URI=\"\" (the whole document)"
                ),
            ));
        }
        None => {
            return Err(wrapping(
                reference,
                "Reference has no URI; only URI=\"\" (the whole document) is allowed".into(),
            ));
        }
    }
    let mut children = reference.children.iter();
    let transforms = children
        .next()
        .filter(|c| c.is(uri::DSIG, "Transforms"))
        .ok_or_else(|| {
            wrapping(
                reference,
                "Reference has no Transforms; enveloped-signature then exclusive c14n are required"
                    .into(),
            )
        })?;
    let listed: Vec<&Element> = transforms.children.iter().collect();
    let mut uris = Vec::with_capacity(listed.len());
    for transform in &listed {
        if !transform.is(uri::DSIG, "Transform") {
            return Err(malformed(
                transform,
                format!("unexpected {} in Transforms", qualified(transform)),
            ));
        }
        uris.push(algorithm_of(transform)?);
    }
    if uris != [uri::ENVELOPED, uri::EXC_C14N] {
        return Err(wrapping(
            transforms,
            format!(
                "Transforms are [{}]; exactly [{}, {}] are allowed",
                uris.join(", "),
                uri::ENVELOPED,
                uri::EXC_C14N
            ),
        ));
    }
    if let Some(child) = listed[0].children.first() {
        return Err(wrapping(
            child,
            "the enveloped-signature transform takes no parameters".into(),
        ));
    }
    check_c14n_parameters(listed[1])?;
    let digest_method = children
        .next()
        .filter(|c| c.is(uri::DSIG, "DigestMethod"))
        .ok_or_else(|| malformed(reference, "Reference has no DigestMethod".into()))?;
    let digest_uri = algorithm_of(digest_method)?;
    if digest_uri != uri::SHA256 {
        return Err(algorithm_error(
            digest_method,
            format!(
                "DigestMethod {digest_uri} is not accepted{}; the profile requires {}",
                weakness(digest_uri),
                uri::SHA256
            ),
        ));
    }
    let digest_value = children
        .next()
        .filter(|c| c.is(uri::DSIG, "DigestValue"))
        .ok_or_else(|| malformed(reference, "Reference has no DigestValue".into()))?;
    if let Some(extra) = children.next() {
        return Err(malformed(
            extra,
            format!("unexpected {} in Reference", qualified(extra)),
        ));
    }
    if digest_value.trimmed().is_empty() {
        return Err(malformed(digest_value, "DigestValue is empty".into()));
    }
    Ok(())
}

/// Exclusive c14n takes at most one `InclusiveNamespaces` parameter.
fn check_c14n_parameters(method: &Element) -> Result<(), VerifyError> {
    match method.children.as_slice() {
        [] => Ok(()),
        [one] if one.is(uri::EXC_C14N, "InclusiveNamespaces") && one.children.is_empty() => Ok(()),
        [first, ..] => Err(wrapping(
            first,
            format!(
                "exclusive c14n takes only an InclusiveNamespaces parameter, found {}",
                qualified(first)
            ),
        )),
    }
}

fn certificate(key_info: &Element) -> Result<Vec<u8>, VerifyError> {
    let mut certificates = Vec::new();
    for child in &key_info.children {
        if child.is(uri::DSIG, "X509Data") {
            certificates.extend(child.children_named(uri::DSIG, "X509Certificate"));
        } else if !(child.is(uri::DSIG, "KeyName") || child.is(uri::DSIG, "KeyValue")) {
            return Err(malformed(
                child,
                format!(
                    "unexpected {} in KeyInfo (only X509Data, KeyName, KeyValue)",
                    qualified(child)
                ),
            ));
        }
    }
    let certificate = match certificates.as_slice() {
        [one] => *one,
        [] => {
            return Err(malformed(
                key_info,
                "KeyInfo has no X509Data/X509Certificate with the signer's certificate".into(),
            ));
        }
        [_, second, ..] => {
            return Err(malformed(
                second,
                format!(
                    "KeyInfo has {} certificates; exactly one, the signer's, is allowed",
                    certificates.len()
                ),
            ));
        }
    };
    let base64: String = certificate
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if base64.is_empty() {
        return Err(malformed(certificate, "X509Certificate is empty".into()));
    }
    openssl::base64::decode_block(&base64).map_err(|_| {
        // The OpenSSL error queue is drained by the failed call's ErrorStack.
        malformed(certificate, "X509Certificate is not base64".into())
    })
}

fn algorithm_of(element: &Element) -> Result<&str, VerifyError> {
    element
        .attribute("Algorithm")
        .ok_or_else(|| malformed(element, format!("{} has no Algorithm", element.name)))
}

fn qualified(element: &Element) -> String {
    if &*element.namespace == uri::DSIG {
        format!("ds:{}", element.name)
    } else if element.namespace.is_empty() {
        element.name.clone()
    } else {
        format!("{{{}}}{}", element.namespace, element.name)
    }
}

fn wrapping(element: &Element, reason: String) -> VerifyError {
    VerifyError::Wrapping {
        line: element.line,
        reason,
    }
}

fn algorithm_error(element: &Element, reason: String) -> VerifyError {
    VerifyError::Algorithm {
        line: element.line,
        reason,
    }
}

fn malformed(element: &Element, reason: String) -> VerifyError {
    VerifyError::Malformed {
        line: element.line,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asw_model::xml::{Limits, parse_selected};

    /// A message skeleton with `signature` as the last child of the root.
    fn check_signature(signature: &str) -> Result<SignatureParts, VerifyError> {
        let xml = format!(
            r#"<m:Message xmlns:m="urn:m" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><m:Body/>{signature}</m:Message>"#
        );
        check(&parse_selected(xml.as_bytes(), &Limits::default(), &select).expect("well-formed"))
    }

    fn signature(c14n_params: &str, transforms: &str, extra: &str) -> String {
        format!(
            r#"<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}">{c14n_params}</ds:CanonicalizationMethod><ds:SignatureMethod Algorithm="{rsa}"/><ds:Reference URI=""><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="{sha256}"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
AAEC
Aw==</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{extra}</ds:Signature>"#,
            c14n = uri::EXC_C14N,
            rsa = uri::RSA_SHA256,
            sha256 = uri::SHA256,
        )
    }

    fn profile_transforms() -> String {
        format!(
            r#"<ds:Transform Algorithm="{}"/><ds:Transform Algorithm="{}"/>"#,
            uri::ENVELOPED,
            uri::EXC_C14N
        )
    }

    #[test]
    fn accepts_the_profile_and_decodes_the_certificate() {
        let parts = check_signature(&signature("", &profile_transforms(), "")).expect("profile");
        assert_eq!(parts.algorithm, SignatureAlgorithm::RsaSha256);
        assert_eq!(parts.certificate_der, [0, 1, 2, 3]);
        assert_eq!(parts.line, 1);
    }

    #[test]
    fn accepts_inclusive_namespaces_but_nothing_else_as_c14n_parameter() {
        let prefixes = r#"<ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="m"/>"#;
        assert!(check_signature(&signature(prefixes, &profile_transforms(), "")).is_ok());
        let other = r#"<ds:XPath>1</ds:XPath>"#;
        let err = check_signature(&signature(other, &profile_transforms(), "")).expect_err("param");
        assert_eq!(err.code(), "SIG-WRAPPING");
    }

    #[test]
    fn refuses_unexpected_elements_in_the_signature() {
        let err = check_signature(&signature("", &profile_transforms(), "<ds:Extra/>"))
            .expect_err("extra");
        assert_eq!(err.code(), "SIG-MALFORMED");
        let err = check_signature(&signature("", &profile_transforms(), "<ds:Object/>"))
            .expect_err("object");
        assert_eq!(err.code(), "SIG-WRAPPING");
        let reversed = format!(
            r#"<ds:Transform Algorithm="{}"/><ds:Transform Algorithm="{}"/>"#,
            uri::EXC_C14N,
            uri::ENVELOPED
        );
        let err = check_signature(&signature("", &reversed, "")).expect_err("order");
        assert_eq!(err.code(), "SIG-WRAPPING");
    }
}
