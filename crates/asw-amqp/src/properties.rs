//! The message properties and headers the hub sets and reads, as plain Rust values, and their
//! mapping to and from lapin's AMQP types (where over-long names give an error, not a panic).

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};

use crate::AmqpError;

/// AMQP headers: a field table with string, integer and nested values.
pub type Headers = BTreeMap<String, HeaderValue>;

/// One header value.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// A string (AMQP long string holding UTF-8).
    Str(String),
    /// An integer of any AMQP width, or a timestamp.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A floating-point or decimal number.
    Float(f64),
    /// Bytes that are not UTF-8.
    Bytes(Vec<u8>),
    /// An array, e.g. RabbitMQ's `x-death`.
    Array(Vec<HeaderValue>),
    /// A nested table.
    Table(Headers),
    /// No value.
    Void,
}

impl HeaderValue {
    /// About how many bytes this value takes in an AMQP field table (its content plus a small
    /// overhead per value), for bounding a message's headers before they are encoded.
    pub fn encoded_len_estimate(&self) -> usize {
        5 + match self {
            HeaderValue::Str(s) => s.len(),
            HeaderValue::Bytes(b) => b.len(),
            HeaderValue::Int(_) | HeaderValue::Float(_) => 8,
            HeaderValue::Bool(_) | HeaderValue::Void => 1,
            HeaderValue::Array(items) => items.iter().map(HeaderValue::encoded_len_estimate).sum(),
            HeaderValue::Table(table) => table
                .iter()
                .map(|(name, value)| 1 + name.len() + value.encoded_len_estimate())
                .sum(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            HeaderValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn from_amqp(value: &AMQPValue) -> HeaderValue {
        match value {
            AMQPValue::Boolean(b) => HeaderValue::Bool(*b),
            AMQPValue::ShortShortInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortShortUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::ShortUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongUInt(i) => HeaderValue::Int(i64::from(*i)),
            AMQPValue::LongLongInt(i) => HeaderValue::Int(*i),
            AMQPValue::Timestamp(t) => HeaderValue::Int(i64::try_from(*t).unwrap_or(i64::MAX)),
            AMQPValue::Float(f) => HeaderValue::Float(f64::from(*f)),
            AMQPValue::Double(f) => HeaderValue::Float(*f),
            AMQPValue::DecimalValue(d) => {
                HeaderValue::Float(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
            }
            AMQPValue::ShortString(s) => HeaderValue::Str(s.as_str().to_owned()),
            AMQPValue::LongString(s) => bytes_value(s.as_bytes()),
            AMQPValue::ByteArray(b) => bytes_value(b.as_slice()),
            AMQPValue::FieldArray(a) => {
                HeaderValue::Array(a.as_slice().iter().map(HeaderValue::from_amqp).collect())
            }
            AMQPValue::FieldTable(t) => HeaderValue::Table(headers_from_table(t)),
            AMQPValue::Void => HeaderValue::Void,
        }
    }

    fn to_amqp(&self) -> Result<AMQPValue, AmqpError> {
        Ok(match self {
            HeaderValue::Str(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
            HeaderValue::Int(i) => AMQPValue::LongLongInt(*i),
            HeaderValue::Bool(b) => AMQPValue::Boolean(*b),
            HeaderValue::Float(f) => AMQPValue::Double(*f),
            HeaderValue::Bytes(b) => AMQPValue::ByteArray(b.as_slice().into()),
            HeaderValue::Array(values) => AMQPValue::FieldArray(FieldArray::from(
                values
                    .iter()
                    .map(HeaderValue::to_amqp)
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            HeaderValue::Table(headers) => AMQPValue::FieldTable(table_from_headers(headers)?),
            HeaderValue::Void => AMQPValue::Void,
        })
    }
}

fn bytes_value(bytes: &[u8]) -> HeaderValue {
    match std::str::from_utf8(bytes) {
        Ok(s) => HeaderValue::Str(s.to_owned()),
        Err(_) => HeaderValue::Bytes(bytes.to_vec()),
    }
}

impl From<&str> for HeaderValue {
    fn from(value: &str) -> Self {
        HeaderValue::Str(value.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(value: String) -> Self {
        HeaderValue::Str(value)
    }
}

impl From<i64> for HeaderValue {
    fn from(value: i64) -> Self {
        HeaderValue::Int(value)
    }
}

impl From<i32> for HeaderValue {
    fn from(value: i32) -> Self {
        HeaderValue::Int(i64::from(value))
    }
}

impl From<u32> for HeaderValue {
    fn from(value: u32) -> Self {
        HeaderValue::Int(i64::from(value))
    }
}

impl From<bool> for HeaderValue {
    fn from(value: bool) -> Self {
        HeaderValue::Bool(value)
    }
}

/// The properties of a message the hub sets on publish and reads on delivery.
///
/// [`Properties::default`] is persistent (delivery mode 2) with nothing else set.
#[derive(Debug, Clone, PartialEq)]
pub struct Properties {
    /// `message-id`.
    pub message_id: Option<String>,
    /// `correlation-id`.
    pub correlation_id: Option<String>,
    /// `user-id`: RabbitMQ refuses a publish whose `user_id` is not the connection's user, so on
    /// delivery it proves which user published (partner gateways connect as `partner-CC`).
    pub user_id: Option<String>,
    /// `content-type`, e.g. `application/xml`.
    pub content_type: Option<String>,
    /// Delivery mode 2 (written to disk) rather than 1.
    pub persistent: bool,
    /// Headers.
    pub headers: Headers,
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            message_id: None,
            correlation_id: None,
            user_id: None,
            content_type: None,
            persistent: true,
            headers: Headers::new(),
        }
    }
}

impl Properties {
    /// Persistent properties with nothing else set.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Sets the message id.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the user id the broker validates.
    pub fn with_user_id(mut self, user: impl Into<String>) -> Self {
        self.user_id = Some(user.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets delivery mode 1 (transient) instead of 2 (persistent).
    pub fn transient(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// Sets one header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.get(name)
    }

    /// The properties as lapin sends them.
    pub(crate) fn to_lapin(&self) -> Result<BasicProperties, AmqpError> {
        let mut props =
            BasicProperties::default().with_delivery_mode(if self.persistent { 2 } else { 1 });
        if let Some(id) = &self.message_id {
            props = props.with_message_id(short(id, "message id")?);
        }
        if let Some(id) = &self.correlation_id {
            props = props.with_correlation_id(short(id, "correlation id")?);
        }
        if let Some(user) = &self.user_id {
            props = props.with_user_id(short(user, "user id")?);
        }
        if let Some(content_type) = &self.content_type {
            props = props.with_content_type(short(content_type, "content type")?);
        }
        if !self.headers.is_empty() {
            props = props.with_headers(table_from_headers(&self.headers)?);
        }
        Ok(props)
    }

    /// The properties of a received message.
    pub(crate) fn from_lapin(props: &BasicProperties) -> Properties {
        let string = |s: &Option<ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
        Properties {
            message_id: string(props.message_id()),
            correlation_id: string(props.correlation_id()),
            user_id: string(props.user_id()),
            content_type: string(props.content_type()),
            persistent: *props.delivery_mode() == Some(2),
            headers: props
                .headers()
                .as_ref()
                .map(headers_from_table)
                .unwrap_or_default(),
        }
    }
}

/// An AMQP short string (at most 255 bytes), or an error naming the field.
pub(crate) fn short(value: &str, field: &'static str) -> Result<ShortString, AmqpError> {
    ShortString::try_new(value).map_err(|_| AmqpError::TooLong {
        field,
        len: value.len(),
    })
}

/// The most header bytes (names and values) a message may carry. RabbitMQ closes the whole
/// connection (FRAME_ERROR) when a content header does not fit in one frame (`frame_max`,
/// 131,072 bytes by default), so a message whose headers could not fit is refused here, as that
/// message's own error, before anything is sent.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

fn table_from_headers(headers: &Headers) -> Result<FieldTable, AmqpError> {
    let len: usize = headers
        .iter()
        .map(|(name, value)| name.len() + value.encoded_len_estimate())
        .sum();
    if len > MAX_HEADER_BYTES {
        return Err(AmqpError::HeadersTooLarge {
            len,
            max: MAX_HEADER_BYTES,
        });
    }
    let mut table = FieldTable::default();
    for (name, value) in headers {
        table.insert(short(name, "header name")?, value.to_amqp()?);
    }
    Ok(table)
}

fn headers_from_table(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), HeaderValue::from_amqp(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_lapin() {
        let mut nested = Headers::new();
        nested.insert("queue".into(), "asw.retry.outbound.200".into());
        nested.insert("count".into(), 2i64.into());
        let props = Properties::new()
            .with_message_id("m-1")
            .with_correlation_id("c-1")
            .with_user_id("partner-TH")
            .with_content_type("application/xml")
            .with_header("x-asw-stage", "outbound")
            .with_header("x-asw-attempts", 3u32)
            .with_header("flag", true)
            .with_header("raw", HeaderValue::Bytes(vec![0xff, 0x00]))
            .with_header(
                "x-death",
                HeaderValue::Array(vec![HeaderValue::Table(nested)]),
            );
        let back = Properties::from_lapin(&props.to_lapin().expect("lapin"));
        assert_eq!(back, props);
        assert!(back.persistent);
        assert_eq!(
            back.header("x-asw-attempts").and_then(HeaderValue::as_int),
            Some(3)
        );
        assert!(
            !Properties::from_lapin(&Properties::new().transient().to_lapin().expect("lapin"))
                .persistent
        );
    }

    #[test]
    fn overlong_short_strings_are_errors() {
        let long = "x".repeat(256);
        let error = Properties::new()
            .with_message_id(long.clone())
            .to_lapin()
            .expect_err("too long");
        assert!(matches!(
            error,
            AmqpError::TooLong {
                field: "message id",
                len: 256
            }
        ));
        let error = Properties::new()
            .with_header(long, 1i64)
            .to_lapin()
            .expect_err("too long");
        assert!(matches!(
            error,
            AmqpError::TooLong {
                field: "header name",
                ..
            }
        ));
    }

    #[test]
    fn reads_integer_widths_and_strings() {
        let mut table = FieldTable::default();
        table.insert("a".into(), AMQPValue::LongInt(-5));
        table.insert("b".into(), AMQPValue::ShortString("s".into()));
        table.insert("c".into(), AMQPValue::Timestamp(7));
        let props = Properties::from_lapin(&BasicProperties::default().with_headers(table));
        assert_eq!(props.header("a"), Some(&HeaderValue::Int(-5)));
        assert_eq!(props.header("b").and_then(HeaderValue::as_str), Some("s"));
        assert_eq!(props.header("c"), Some(&HeaderValue::Int(7)));
        assert!(!props.persistent);
    }
}
