//! Hostile documents of every shape (`asw_model::hostile`) at the size limit through the real
//! validator: each is refused by the bounded reader with its rule before libxml2 sees it, or
//! accepted (shapes whose cost is linear everywhere).

use asw_model::hostile::Shape;
use asw_model::xml::Limits;
use asw_schema::Validator;

#[test]
fn every_shape_at_the_size_limit_is_refused_by_the_reader_or_accepted() {
    let mut validator = Validator::new().expect("the embedded schemas compile");
    for shape in Shape::ALL {
        let document = shape.document(Limits::DEFAULT_MAX_BYTES);
        let result = validator.validate(&document);
        match shape.refusal() {
            Some(rule) => {
                let problems = result.expect_err(shape.name());
                assert_eq!(problems.len(), 1, "{shape:?}: {problems:#?}");
                assert_eq!(problems[0].rule, rule, "{shape:?}: {problems:#?}");
            }
            None => {
                if let Err(problems) = result {
                    panic!("{shape:?} should be accepted: {problems:#?}");
                }
            }
        }
    }
}

/// A small instance of each shape is a valid message: the schema admits the shape, the limits
/// are what refuse the large ones.
#[test]
fn a_small_instance_of_every_shape_is_valid() {
    let mut validator = Validator::new().expect("the embedded schemas compile");
    let base = Shape::ManyElements.document(0).len();
    for shape in Shape::ALL {
        if shape == Shape::NamespaceReference {
            continue;
        }
        let document = shape.document(base + 150);
        if let Err(problems) = validator.validate(&document) {
            panic!("{shape:?} small should be valid: {problems:#?}");
        }
    }
}

/// The reader and libxml2 read the same namespaces: a declaration libxml2 would resolve to the
/// envelope namespace and the reader would not is refused, with its line.
#[test]
fn a_namespace_declaration_with_a_reference_is_refused() {
    let mut validator = Validator::new().expect("the embedded schemas compile");
    let document = Shape::NamespaceReference.document(0);
    let problems = validator.validate(&document).expect_err("refused");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].rule, problems[0].line), ("XML-NAMESPACE", 2));
    assert!(
        problems[0].message.contains("xmlns:asw"),
        "{}",
        problems[0].message
    );
}

/// The limits given to the validator are the ones it applies.
#[test]
fn the_validator_applies_its_own_limits() {
    let schemas = asw_schema::SchemaSet::embedded().expect("schemas");
    let document = Shape::ManyAttributes.document(Shape::ManyElements.document(0).len() + 150);
    let mut default = Validator::with_schemas(&schemas, Limits::default()).expect("validator");
    assert!(default.validate(&document).is_ok());
    let mut strict = Validator::with_schemas(
        &schemas,
        Limits {
            max_attributes: 4,
            ..Limits::default()
        },
    )
    .expect("validator");
    let problems = strict.validate(&document).expect_err("refused");
    assert_eq!(problems[0].rule, "XML-ATTRIBUTES");
}
