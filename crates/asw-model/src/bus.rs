//! The internal bus envelope: metadata that travels with a document between the hub's stages
//! (retry queues, the parking lot, delivery to the back-office), encoded with protobuf (prost) in
//! the AMQP header [`BUS_HEADER`]. The document itself stays the exact bytes received or signed,
//! in the AMQP body.
//!
//! The message is declared here with prost's derive; its schema, for other languages, is
//! `schemas/bus-envelope.proto`, and a test checks the two agree on field numbers.

/// AMQP header carrying the protobuf-encoded [`BusEnvelope`].
pub const BUS_HEADER: &str = "x-asw-envelope";

/// Metadata travelling with a document between stages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BusEnvelope {
    /// ASW message id of the document.
    #[prost(string, tag = "1")]
    pub message_id: String,
    /// Stage the document is in or failed in (`outbound`, `inbound`, `link.TH`).
    #[prost(string, tag = "2")]
    pub stage: String,
    /// Attempts made at this stage so far.
    #[prost(uint32, tag = "3")]
    pub attempts: u32,
    /// When the hub first took the document, unix milliseconds.
    #[prost(int64, tag = "4")]
    pub first_seen_unix_ms: i64,
    /// When the current stage last started on it, unix milliseconds.
    #[prost(int64, tag = "5")]
    pub stage_started_unix_ms: i64,
    /// Member state whose signature was verified (inbound), empty before verification.
    #[prost(string, tag = "6")]
    pub signer: String,
    /// SHA-256 fingerprint of the verified signing certificate.
    #[prost(string, tag = "7")]
    pub signer_fingerprint: String,
    /// Stable code of the last failure (`XSD`, `SIG-UNTRUSTED`...), empty if none.
    #[prost(string, tag = "8")]
    pub reason_code: String,
    /// Readable text of the last failure.
    #[prost(string, tag = "9")]
    pub reason: String,
}

impl BusEnvelope {
    /// Encodes to protobuf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    /// Decodes protobuf bytes; an unreadable envelope is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<BusEnvelope, prost::DecodeError> {
        prost::Message::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let envelope = BusEnvelope {
            message_id: "0b4c1f7e-6a57-4d0e-9c1e-2d5f7e7a0c11".into(),
            stage: "inbound".into(),
            attempts: 3,
            first_seen_unix_ms: 1_767_600_000_000,
            stage_started_unix_ms: 1_767_600_000_500,
            signer: "TH".into(),
            signer_fingerprint: "ab".repeat(32),
            reason_code: "JOURNAL".into(),
            reason: "database is locked".into(),
        };
        assert_eq!(BusEnvelope::from_bytes(&envelope.to_bytes()), Ok(envelope));
        assert!(BusEnvelope::from_bytes(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn proto_file_agrees_with_the_derive() {
        let proto = include_str!("../../../schemas/bus-envelope.proto");
        for (field, tag) in [
            ("string message_id", 1),
            ("string stage", 2),
            ("uint32 attempts", 3),
            ("int64 first_seen_unix_ms", 4),
            ("int64 stage_started_unix_ms", 5),
            ("string signer", 6),
            ("string signer_fingerprint", 7),
            ("string reason_code", 8),
            ("string reason", 9),
        ] {
            assert!(
                proto.contains(&format!("{field} = {tag};")),
                "{field} = {tag} missing from the .proto"
            );
        }
    }
}
