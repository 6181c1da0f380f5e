//! Every exchange, queue, routing key and header name of the broker contract, in one place.
//! These names are a public contract: extend, never rename.

use asw_model::{DocumentKind, MemberState};

/// Topic exchange where back-offices publish documents to send; routing key = document kind.
pub const OUTBOUND_EXCHANGE: &str = "asw.outbound";
/// Topic exchange where the hub delivers verified inbound documents (`<kind>.<sender>`) and
/// outcomes of outbound ones (`outcome.<kind>.<receiver>`).
pub const INBOUND_EXCHANGE: &str = "asw.inbound";
/// Direct exchange where partner gateways publish signed documents; routing key = their code.
pub const PARTNER_IN_EXCHANGE: &str = "asw.partner.in";
/// Direct exchange routing signed documents to `asw.partner.out.<CC>`; routing key = CC.
pub const PARTNER_OUT_EXCHANGE: &str = "asw.partner.out";
/// Queue the hub's outbound pipeline consumes (bound to [`OUTBOUND_EXCHANGE`] with `#`).
pub const HUB_OUTBOUND_QUEUE: &str = "asw.hub.outbound";
/// Queue the hub's inbound pipeline consumes (bound to [`PARTNER_IN_EXCHANGE`] per partner).
pub const HUB_INBOUND_QUEUE: &str = "asw.hub.inbound";
/// Parking lot: what failed for good, with headers naming stage, reason and attempts.
pub const PARKED_QUEUE: &str = "asw.parked";
/// Prefix of the retry queues (`asw.retry.<stage>.<delay>`).
pub const RETRY_QUEUE_PREFIX: &str = "asw.retry";

/// Header: the pipeline stage a message failed in (`outbound`, `inbound`, `link.TH`).
pub const HEADER_STAGE: &str = "x-asw-stage";
/// Header: why a message was parked or an outcome is negative.
pub const HEADER_REASON: &str = "x-asw-reason";
/// Header: stable code of the reason (`XSD`, `FORMD-004`, `SIG-UNTRUSTED`...).
pub const HEADER_REASON_CODE: &str = "x-asw-reason-code";
/// Header: how many times processing was attempted.
pub const HEADER_ATTEMPTS: &str = "x-asw-attempts";
/// Header: the ASW message id the AMQP message carries or concerns.
pub const HEADER_MESSAGE_ID: &str = "x-asw-message-id";
/// Header: the outcome reported to a back-office (`delivered`, `acknowledged`, `rejected`, `failed`...).
pub const HEADER_OUTCOME: &str = "x-asw-outcome";
/// Header: when the message was parked (RFC 3339).
pub const HEADER_PARKED_AT: &str = "x-asw-parked-at";

/// Header: the routing key a message was first published with, kept when the hub moves it between
/// its own queues (retry queues, the parking lot) and when an operator replays it.
pub const HEADER_ROUTING_KEY: &str = "x-asw-routing-key";
/// Header: the exchange a message was first published to.
pub const HEADER_EXCHANGE: &str = "x-asw-exchange";
/// Header: the broker user that first published a message (`partner-TH`), kept like
/// [`HEADER_ROUTING_KEY`]; the hub trusts it only on messages published by its own user.
pub const HEADER_TRANSPORT_USER: &str = "x-asw-transport-user";
/// On a document delivered to the back-office: `true` when an earlier attempt to deliver it may
/// have reached the back-office already (its broker confirm was lost with the connection, or the
/// hub stopped before journaling it delivered). A back-office that has seen the message id
/// drops it; one that has not takes it as new. Never set on a first delivery.
pub const HEADER_POSSIBLE_DUPLICATE: &str = "x-asw-possible-duplicate";

/// Content type of every document on the bus.
pub const CONTENT_TYPE_XML: &str = "application/xml";

/// The hub's pipeline stages, as named in headers and retry queues.
pub mod stage {
    /// Back-office document -> validated, signed, queued for the partner.
    pub const OUTBOUND: &str = "outbound";
    /// Partner document -> verified, validated, delivered to the back-office.
    pub const INBOUND: &str = "inbound";
    /// An outcome for a back-office (JSON) that no back-office queue took: parked, and
    /// republished to `asw.inbound` with its routing key when replayed.
    pub const OUTCOME: &str = "outcome";
    /// A signed document on its way to a partner through the hub's push link
    /// (`asw.partner.out.<CC>`): replayed to `asw.partner.out` with the partner's code.
    pub const LINK: &str = "link";
}

/// The vhost of a member state's hub in the demo and tests (`asw-vn`).
pub fn vhost(state: MemberState) -> String {
    format!("asw-{}", state.lower())
}

/// The RabbitMQ user a partner gateway connects as (`partner-TH`).
pub fn partner_user(state: MemberState) -> String {
    format!("partner-{}", state.code())
}

/// The member state a `partner-CC` user name stands for.
pub fn partner_of_user(user: &str) -> Option<MemberState> {
    MemberState::from_alpha2(user.strip_prefix("partner-")?)
}

/// The queue of signed documents waiting for partner `state` (`asw.partner.out.TH`).
pub fn partner_out_queue(state: MemberState) -> String {
    format!("{PARTNER_OUT_EXCHANGE}.{}", state.code())
}

/// Stage name of the push link to a partner (`link.TH`).
pub fn link_stage(state: MemberState) -> String {
    format!("link.{}", state.code())
}

/// Routing key of a verified inbound document in [`INBOUND_EXCHANGE`] (`formd.TH`).
pub fn inbound_key(kind: DocumentKind, sender: MemberState) -> String {
    format!("{kind}.{}", sender.code())
}

/// Routing key of an outcome in [`INBOUND_EXCHANGE`] (`outcome.formd.TH`).
pub fn outcome_key(kind: DocumentKind, receiver: MemberState) -> String {
    format!("outcome.{kind}.{}", receiver.code())
}

/// Routing key a back-office uses in [`OUTBOUND_EXCHANGE`] for a document kind (`formd`).
pub fn outbound_key(kind: DocumentKind) -> &'static str {
    kind.as_str()
}

/// The retry queue of `stage` with `delay_ms` (`asw.retry.outbound.5000`).
pub fn retry_queue(stage: &str, delay_ms: u32) -> String {
    format!("{RETRY_QUEUE_PREFIX}.{stage}.{delay_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    #[test]
    fn contract_names() {
        assert_eq!(vhost(state("VN")), "asw-vn");
        assert_eq!(partner_user(state("TH")), "partner-TH");
        assert_eq!(partner_of_user("partner-TH"), Some(state("TH")));
        assert_eq!(partner_of_user("guest"), None);
        assert_eq!(partner_of_user("partner-XX"), None);
        assert_eq!(partner_out_queue(state("SG")), "asw.partner.out.SG");
        assert_eq!(
            inbound_key(DocumentKind::FormDAck, state("TH")),
            "formd-ack.TH"
        );
        assert_eq!(
            outcome_key(DocumentKind::FormD, state("TH")),
            "outcome.formd.TH"
        );
        assert_eq!(outbound_key(DocumentKind::AcddResponse), "acdd-response");
        assert_eq!(
            retry_queue(stage::OUTBOUND, 5000),
            "asw.retry.outbound.5000"
        );
    }
}
