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

/// Policy giving every queue something consumes (the stage queues and `asw.partner.out.<CC>`)
/// a delivery limit, past which the broker dead-letters a message into [`PARKED_QUEUE`].
pub const DELIVERY_LIMIT_POLICY: &str = "asw-delivery-limit";
/// Policy keeping [`PARKED_QUEUE`]'s delivery limit out of reach (RabbitMQ 4.0 to 4.2 count each
/// read by `aswctl` against it, 20 by default).
pub const PARKED_POLICY: &str = "asw-parked";
/// Reason code of a message the broker parked because it reached its queue's delivery limit
/// (it carries the broker's `x-death` header, not the hub's `x-asw-*` ones).
pub const REASON_DELIVERY_LIMIT: &str = "DELIVERY-LIMIT";
/// The `x-death` reason RabbitMQ gives a message dead-lettered for its delivery limit.
pub const DEATH_DELIVERY_LIMIT: &str = "delivery_limit";
/// Header RabbitMQ adds to a dead-lettered message: one table per queue and reason, the latest
/// first, with `queue`, `reason`, `count`, `time`, `exchange` and `routing-keys`.
pub const HEADER_DEATH: &str = "x-death";

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
    /// The IPPC ePhyto Hub channel: an import it could not read (inbound), or a certificate
    /// the hub refused (outbound, routing key `<CC>.ippc`: replayed into `asw.ippc.out.<CC>`).
    pub const IPPC: &str = "ippc";
}

/// The vhost of a member state's hub in the demo and tests (`asw-vn`).
pub fn vhost(state: MemberState) -> String {
    format!("asw-{}", state.lower())
}

/// The RabbitMQ user a partner gateway connects as (`partner-TH`).
pub fn partner_user(state: MemberState) -> String {
    format!("partner-{}", state.code())
}

/// Prefix of the queues of a `[[back_office]]` system (`asw.backoffice.<name>.documents`).
pub const BACK_OFFICE_QUEUE_PREFIX: &str = "asw.backoffice";

/// The queue of a back-office's own broker identity where the hub's deliveries of the kinds
/// and senders it receives arrive (`asw.backoffice.customs.documents`).
pub fn back_office_documents_queue(name: &str) -> String {
    format!("{BACK_OFFICE_QUEUE_PREFIX}.{name}.documents")
}

/// The queue of a back-office's own broker identity where the outcomes of the kinds it sends
/// arrive (`asw.backoffice.customs.outcomes`).
pub fn back_office_outcomes_queue(name: &str) -> String {
    format!("{BACK_OFFICE_QUEUE_PREFIX}.{name}.outcomes")
}

/// The member state a `partner-CC` user name stands for.
pub fn partner_of_user(user: &str) -> Option<MemberState> {
    MemberState::from_alpha2(user.strip_prefix("partner-")?)
}

/// The queue of signed documents waiting for partner `state` (`asw.partner.out.TH`).
pub fn partner_out_queue(state: MemberState) -> String {
    format!("{PARTNER_OUT_EXCHANGE}.{}", state.code())
}

/// The queue of signed documents for partner `state` that travel through the IPPC ePhyto Hub
/// (`asw.ippc.out.TH`), bound in `asw.partner.out` to [`ippc_out_key`]; the hub's IPPC channel
/// consumes it (never the partner).
pub fn ippc_out_queue(state: MemberState) -> String {
    format!("{IPPC_OUT_QUEUE_PREFIX}.{}", state.code())
}

/// What every [`ippc_out_queue`] name starts with, before `.<CC>`.
pub const IPPC_OUT_QUEUE_PREFIX: &str = "asw.ippc.out";

/// The queue of imports from the IPPC ePhyto Hub that an operator replayed (stage `ippc`,
/// inbound): the hub's import task reads each again and delivers or parks it. Declared for a
/// hub that imports from the IPPC hub; only the hub's own user may write to it.
pub const IPPC_IN_QUEUE: &str = "asw.ippc.in";

/// Header of an IPPC import (delivered or parked): the IPPC hub's delivery number.
pub const HEADER_HUB_DELIVERY_NUMBER: &str = "x-asw-hub-delivery-number";

/// The routing key in `asw.partner.out` of a document for `state` through the IPPC ePhyto Hub
/// (`TH.ippc`; the partner's own queue is bound to `TH` alone).
pub fn ippc_out_key(state: MemberState) -> String {
    format!("{}.ippc", state.code())
}

/// The partner whose IPPC queue a routing key `<CC>.ippc` names (the inverse of
/// [`ippc_out_key`]).
pub fn partner_of_ippc_key(key: &str) -> Option<MemberState> {
    MemberState::from_alpha2(key.strip_suffix(".ippc")?)
}

/// Stage name of the push link to a partner (`link.TH`): what consumes `asw.partner.out.TH`.
pub fn link_stage(state: MemberState) -> String {
    format!("link.{}", state.code())
}

/// The member state a `link.CC` stage names.
pub fn partner_of_link_stage(stage: &str) -> Option<MemberState> {
    MemberState::from_alpha2(stage.strip_prefix("link.")?)
}

/// The stage whose consumer reads `queue`: `outbound`, `inbound`, `link.CC` for
/// `asw.partner.out.CC`, or `ippc` for `asw.ippc.out.CC` (whose replay needs the routing key
/// `CC.ippc` too: [`queue_of_stage`] has no queue for it alone); `None` for any other queue.
pub fn stage_of_queue(queue: &str) -> Option<String> {
    match queue {
        HUB_OUTBOUND_QUEUE => Some(stage::OUTBOUND.to_owned()),
        HUB_INBOUND_QUEUE => Some(stage::INBOUND.to_owned()),
        _ if queue
            .strip_prefix(IPPC_OUT_QUEUE_PREFIX)
            .and_then(|q| q.strip_prefix('.'))
            .and_then(MemberState::from_alpha2)
            .is_some() =>
        {
            Some(stage::IPPC.to_owned())
        }
        _ => {
            let code = queue
                .strip_prefix(PARTNER_OUT_EXCHANGE)?
                .strip_prefix('.')?;
            MemberState::from_alpha2(code).map(link_stage)
        }
    }
}

/// The queue a stage consumes: the inverse of [`stage_of_queue`].
pub fn queue_of_stage(stage: &str) -> Option<String> {
    match stage {
        stage::OUTBOUND => Some(HUB_OUTBOUND_QUEUE.to_owned()),
        stage::INBOUND => Some(HUB_INBOUND_QUEUE.to_owned()),
        _ => partner_of_link_stage(stage).map(partner_out_queue),
    }
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
            back_office_documents_queue("customs"),
            "asw.backoffice.customs.documents"
        );
        assert_eq!(
            back_office_outcomes_queue("customs"),
            "asw.backoffice.customs.outcomes"
        );
        assert_eq!(
            retry_queue(stage::OUTBOUND, 5000),
            "asw.retry.outbound.5000"
        );
    }

    #[test]
    fn stages_and_the_queues_they_consume() {
        for (queue, stage) in [
            ("asw.hub.outbound", "outbound"),
            ("asw.hub.inbound", "inbound"),
            ("asw.partner.out.TH", "link.TH"),
        ] {
            assert_eq!(stage_of_queue(queue).as_deref(), Some(stage));
            assert_eq!(queue_of_stage(stage).as_deref(), Some(queue));
        }
        for queue in [
            "asw.parked",
            "asw.partner.out.XX",
            "asw.partner.out",
            "asw.retry.inbound.200",
        ] {
            assert_eq!(stage_of_queue(queue), None, "{queue}");
        }
        assert_eq!(stage_of_queue("asw.ippc.out.TH").as_deref(), Some("ippc"));
        assert_eq!(stage_of_queue("asw.ippc.out.XX"), None);
        assert_eq!(queue_of_stage("ippc"), None);
        assert_eq!(partner_of_ippc_key("TH.ippc"), Some(state("TH")));
        assert_eq!(partner_of_ippc_key("TH"), None);
        assert_eq!(queue_of_stage("link.XX"), None);
        assert_eq!(queue_of_stage("parked"), None);
        assert_eq!(partner_of_link_stage("link.SG"), Some(state("SG")));
    }
}
