//! The broker topology of one hub's vhost, as data: what `aswctl topology apply` declares.

use asw_model::{DocumentKind, MemberState};

use crate::names;

/// Kind of an AMQP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Routes by exact routing key.
    Direct,
    /// Routes by routing-key pattern.
    Topic,
    /// Routes to every bound queue.
    Fanout,
}

impl ExchangeKind {
    /// The AMQP name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Fanout => "fanout",
        }
    }
}

/// A durable exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ExchangeKind,
}

/// A queue argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// A string value.
    Str(String),
    /// An integer value.
    Int(i64),
}

/// A durable quorum queue with its arguments (`x-queue-type` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Name.
    pub name: String,
    /// Arguments, e.g. `x-queue-type = quorum`, `x-message-ttl`.
    pub arguments: Vec<(String, Argument)>,
}

/// A binding of a queue to an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Source exchange.
    pub exchange: String,
    /// Destination queue.
    pub queue: String,
    /// Routing key or pattern.
    pub routing_key: String,
}

/// RabbitMQ permissions of a user in the vhost (regular expressions over resource names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Resources the user may declare or delete.
    pub configure: String,
    /// Resources the user may publish to.
    pub write: String,
    /// Resources the user may consume from.
    pub read: String,
}

/// RabbitMQ topic permissions of a user on one topic exchange: the routing keys it may publish
/// with (`write`) and bind with (`read`), as regular expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermission {
    /// The topic exchange.
    pub exchange: String,
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind or consume with.
    pub read: String,
}

/// A RabbitMQ user the hub's vhost needs (passwords come from configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name (`partner-TH`, or a back-office's name).
    pub name: String,
    /// The member state a partner user stands for; `None` for a back-office.
    pub partner: Option<MemberState>,
    /// Permissions in the hub's vhost.
    pub permissions: Permissions,
    /// Topic permissions in the hub's vhost (none: any routing key on what it may write to).
    pub topic_permissions: Vec<TopicPermission>,
}

/// A back-office system with a broker identity of its own (`[[back_office]]`): the kinds it
/// may publish to `asw.outbound`, and the kinds and senders it receives from `asw.inbound`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackOffice {
    /// Its broker user, also the middle of its queues' names (`asw.backoffice.<name>.*`).
    pub name: String,
    /// Kinds it may send (routing keys of `asw.outbound`); their outcomes come to it.
    pub sends: Vec<DocumentKind>,
    /// Kinds the hub delivers to it.
    pub receives: Vec<DocumentKind>,
    /// Senders it receives them from; empty: every partner.
    pub from: Vec<MemberState>,
}

/// What a policy applies to (`apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTarget {
    /// Queues only.
    Queues,
}

impl PolicyTarget {
    /// The management API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyTarget::Queues => "queues",
        }
    }
}

/// A RabbitMQ policy: settings the broker applies to every queue whose name matches `pattern`,
/// changeable at any time without redeclaring the queues. A queue has at most one policy (the
/// matching one of highest priority), and its own arguments win over its policy's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Name.
    pub name: String,
    /// Regular expression over queue names.
    pub pattern: String,
    /// What it applies to.
    pub apply_to: PolicyTarget,
    /// Among policies matching a queue, the highest priority applies.
    pub priority: i64,
    /// The keys it sets (`delivery-limit`, `dead-letter-exchange`...).
    pub definition: Vec<(String, Argument)>,
}

/// Delivery limit of the queues the hub and partners consume, unless configured.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;
/// Largest configurable delivery limit.
pub const MAX_DELIVERY_LIMIT: u32 = 1_000;
/// Delivery limit of the parking lot: out of reach.
pub const PARKED_DELIVERY_LIMIT: u32 = 1_000_000;
/// Priority of the hub's policies, above the default 0 of policies an operator adds broadly.
pub const POLICY_PRIORITY: i64 = 10;

/// Back-off of transient failures: the delay before attempt n+1 is `delays_ms[n-1]` (the last
/// delay repeats) until `max_attempts`, after which the message is parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Distinct delays, shortest first; each gets its own retry queue per stage.
    pub delays_ms: Vec<u32>,
    /// Attempts in all before parking.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failed ones, or `None` to park.
    pub fn delay_after(&self, attempts: u32) -> Option<u32> {
        if attempts >= self.max_attempts || self.delays_ms.is_empty() {
            return None;
        }
        let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays_ms.get(index).or(self.delays_ms.last()).copied()
    }
}

/// Everything one hub declares in its vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Exchanges.
    pub exchanges: Vec<Exchange>,
    /// Queues.
    pub queues: Vec<Queue>,
    /// Bindings.
    pub bindings: Vec<Binding>,
    /// Partner and back-office users and their permissions.
    pub users: Vec<User>,
    /// Policies (set through the management API).
    pub policies: Vec<Policy>,
}

fn quorum(name: impl Into<String>, mut extra: Vec<(String, Argument)>) -> Queue {
    let mut arguments = vec![("x-queue-type".to_owned(), Argument::Str("quorum".into()))];
    arguments.append(&mut extra);
    Queue {
        name: name.into(),
        arguments,
    }
}

fn exchange(name: &str, kind: ExchangeKind) -> Exchange {
    Exchange {
        name: name.into(),
        kind,
    }
}

fn bind(exchange: &str, queue: &str, routing_key: &str) -> Binding {
    Binding {
        exchange: exchange.into(),
        queue: queue.into(),
        routing_key: routing_key.into(),
    }
}

/// Escapes a name for use in a RabbitMQ permission regular expression, anchored.
fn exact(name: &str) -> String {
    format!("^{}$", name.replace('.', "\\."))
}

/// The policies of a hub's vhost.
///
/// [`names::DELIVERY_LIMIT_POLICY`] covers the queues something consumes: the stage queues,
/// `asw.partner.out.<CC>` (read by the push link or by the partner), `asw.ippc.out.<CC>` (read
/// by the hub's IPPC channel) and `asw.ippc.in` (replayed imports, read by its import task). A
/// message returned to one of
/// them more than `delivery_limit` times (a consumer that crashes on it, or keeps rejecting it)
/// is dead-lettered into `asw.parked` through the default exchange, at least once, instead of
/// going round for ever (RabbitMQ 3.x sets no limit) or being dropped (4.x defaults to 20 with no
/// dead-letter target). The retry queues are not covered: nothing consumes them, and their own
/// `x-dead-letter-*` arguments, which send expired messages back to their stage, would win over
/// the policy's anyway. [`names::PARKED_POLICY`] keeps the parking lot's own limit out of reach.
fn policies(delivery_limit: u32) -> Vec<Policy> {
    let escape = |name: &str| name.replace('.', "\\.");
    let consumed = format!(
        "^({}|{}|{}\\.[A-Z]{{2}}|{}\\.[A-Z]{{2}}|{})$",
        escape(names::HUB_OUTBOUND_QUEUE),
        escape(names::HUB_INBOUND_QUEUE),
        escape(names::PARTNER_OUT_EXCHANGE),
        escape(names::IPPC_OUT_QUEUE_PREFIX),
        escape(names::IPPC_IN_QUEUE)
    );
    vec![
        Policy {
            name: names::DELIVERY_LIMIT_POLICY.into(),
            pattern: consumed,
            apply_to: PolicyTarget::Queues,
            priority: POLICY_PRIORITY,
            definition: vec![
                (
                    "delivery-limit".into(),
                    Argument::Int(i64::from(delivery_limit)),
                ),
                ("dead-letter-exchange".into(), Argument::Str(String::new())),
                (
                    "dead-letter-routing-key".into(),
                    Argument::Str(names::PARKED_QUEUE.into()),
                ),
                (
                    "dead-letter-strategy".into(),
                    Argument::Str("at-least-once".into()),
                ),
                // At-least-once dead-lettering needs it; these queues have no length limit.
                ("overflow".into(), Argument::Str("reject-publish".into())),
            ],
        },
        Policy {
            name: names::PARKED_POLICY.into(),
            pattern: exact(names::PARKED_QUEUE),
            apply_to: PolicyTarget::Queues,
            priority: POLICY_PRIORITY,
            definition: vec![(
                "delivery-limit".into(),
                Argument::Int(i64::from(PARKED_DELIVERY_LIMIT)),
            )],
        },
    ]
}

impl Topology {
    /// The topology of the hub of `country` exchanging with `partners`, its consumed queues
    /// limited to `delivery_limit` returns of a message (see [`policies`]).
    pub fn hub(
        country: MemberState,
        partners: &[MemberState],
        retry: &RetryPolicy,
        delivery_limit: u32,
    ) -> Topology {
        let partners: Vec<MemberState> =
            partners.iter().copied().filter(|&p| p != country).collect();
        let exchanges = vec![
            exchange(names::OUTBOUND_EXCHANGE, ExchangeKind::Topic),
            exchange(names::INBOUND_EXCHANGE, ExchangeKind::Topic),
            exchange(names::PARTNER_IN_EXCHANGE, ExchangeKind::Direct),
            exchange(names::PARTNER_OUT_EXCHANGE, ExchangeKind::Direct),
        ];
        let mut queues = vec![
            quorum(names::HUB_OUTBOUND_QUEUE, Vec::new()),
            quorum(names::HUB_INBOUND_QUEUE, Vec::new()),
            quorum(names::PARKED_QUEUE, Vec::new()),
        ];
        let mut bindings = vec![bind(
            names::OUTBOUND_EXCHANGE,
            names::HUB_OUTBOUND_QUEUE,
            "#",
        )];
        let mut users = Vec::new();
        for &partner in &partners {
            let out = names::partner_out_queue(partner);
            queues.push(quorum(out.clone(), Vec::new()));
            bindings.push(bind(names::PARTNER_OUT_EXCHANGE, &out, partner.code()));
            bindings.push(bind(
                names::PARTNER_IN_EXCHANGE,
                names::HUB_INBOUND_QUEUE,
                partner.code(),
            ));
            users.push(User {
                name: names::partner_user(partner),
                partner: Some(partner),
                permissions: Permissions {
                    configure: "^$".into(),
                    write: exact(names::PARTNER_IN_EXCHANGE),
                    read: exact(&out),
                },
                topic_permissions: Vec::new(),
            });
        }
        for (stage, target) in [
            (names::stage::OUTBOUND, names::HUB_OUTBOUND_QUEUE),
            (names::stage::INBOUND, names::HUB_INBOUND_QUEUE),
        ] {
            for &delay in &retry.delays_ms {
                // Expired messages go back to the stage's queue through the default exchange.
                queues.push(quorum(
                    names::retry_queue(stage, delay),
                    vec![
                        ("x-message-ttl".into(), Argument::Int(i64::from(delay))),
                        (
                            "x-dead-letter-exchange".into(),
                            Argument::Str(String::new()),
                        ),
                        (
                            "x-dead-letter-routing-key".into(),
                            Argument::Str(target.into()),
                        ),
                        (
                            "x-dead-letter-strategy".into(),
                            Argument::Str("at-least-once".into()),
                        ),
                        ("x-overflow".into(), Argument::Str("reject-publish".into())),
                    ],
                ));
            }
        }
        Topology {
            exchanges,
            queues,
            bindings,
            users,
            policies: policies(delivery_limit),
        }
    }

    /// Adds, for each partner some of whose documents travel through the IPPC ePhyto Hub, the
    /// queue `asw.ippc.out.<CC>` bound in `asw.partner.out` to `<CC>.ippc`.
    pub fn with_ippc_partners(mut self, partners: &[MemberState]) -> Topology {
        for &partner in partners {
            let queue = names::ippc_out_queue(partner);
            self.queues.push(quorum(queue.clone(), Vec::new()));
            self.bindings.push(bind(
                names::PARTNER_OUT_EXCHANGE,
                &queue,
                &names::ippc_out_key(partner),
            ));
        }
        self
    }

    /// Adds, for a hub that imports from the IPPC ePhyto Hub, the queue `asw.ippc.in` of the
    /// imports an operator replays.
    pub fn with_ippc_imports(mut self, imports: bool) -> Topology {
        if imports {
            self.queues
                .push(quorum(names::IPPC_IN_QUEUE.to_owned(), Vec::new()));
        }
        self
    }

    /// This topology with a broker identity for each of `back_offices`: its user, which may
    /// publish to `asw.outbound` with the routing keys of the kinds it sends only (topic
    /// permission), configure nothing, and read nothing but its two queues:
    /// `asw.backoffice.<name>.documents`, bound in `asw.inbound` to `<kind>.<sender>` for what
    /// it receives (`<kind>.*` when it receives from every partner), and
    /// `asw.backoffice.<name>.outcomes`, bound to `outcome.<kind>.*` for each kind it sends.
    pub fn with_back_offices(mut self, back_offices: &[BackOffice]) -> Topology {
        for office in back_offices {
            let documents = names::back_office_documents_queue(&office.name);
            let outcomes = names::back_office_outcomes_queue(&office.name);
            self.queues.push(quorum(documents.clone(), Vec::new()));
            self.queues.push(quorum(outcomes.clone(), Vec::new()));
            for &kind in &office.receives {
                if office.from.is_empty() {
                    let key = format!("{kind}.*");
                    self.bindings
                        .push(bind(names::INBOUND_EXCHANGE, &documents, &key));
                }
                for &sender in &office.from {
                    let key = names::inbound_key(kind, sender);
                    self.bindings
                        .push(bind(names::INBOUND_EXCHANGE, &documents, &key));
                }
            }
            for &kind in &office.sends {
                let key = format!("outcome.{kind}.*");
                self.bindings
                    .push(bind(names::INBOUND_EXCHANGE, &outcomes, &key));
            }
            let kinds: Vec<&str> = office.sends.iter().map(|k| k.as_str()).collect();
            self.users.push(User {
                name: office.name.clone(),
                partner: None,
                permissions: Permissions {
                    configure: "^$".into(),
                    write: exact(names::OUTBOUND_EXCHANGE),
                    read: format!(
                        "^({}|{})$",
                        documents.replace('.', "\\."),
                        outcomes.replace('.', "\\.")
                    ),
                },
                topic_permissions: vec![TopicPermission {
                    exchange: names::OUTBOUND_EXCHANGE.into(),
                    write: if kinds.is_empty() {
                        "^$".into()
                    } else {
                        format!("^({})$", kinds.join("|"))
                    },
                    read: "^$".into(),
                }],
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code: &str) -> MemberState {
        MemberState::from_alpha2(code).expect("member state")
    }

    #[test]
    fn hub_topology_has_the_contract_names() {
        let retry = RetryPolicy {
            delays_ms: vec![1_000, 10_000],
            max_attempts: 3,
        };
        let t = Topology::hub(
            state("VN"),
            &[state("TH"), state("SG"), state("VN")],
            &retry,
            5,
        );
        let queues: Vec<&str> = t.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            queues,
            [
                "asw.hub.outbound",
                "asw.hub.inbound",
                "asw.parked",
                "asw.partner.out.TH",
                "asw.partner.out.SG",
                "asw.retry.outbound.1000",
                "asw.retry.outbound.10000",
                "asw.retry.inbound.1000",
                "asw.retry.inbound.10000",
            ]
        );
        assert!(
            t.queues
                .iter()
                .all(|q| q.arguments[0] == ("x-queue-type".into(), Argument::Str("quorum".into())))
        );
        let users: Vec<&str> = t.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["partner-TH", "partner-SG"]);
        assert_eq!(t.users[0].permissions.write, "^asw\\.partner\\.in$");
        assert_eq!(t.users[0].permissions.read, "^asw\\.partner\\.out\\.TH$");
        assert!(
            t.bindings
                .contains(&bind("asw.partner.in", "asw.hub.inbound", "SG"))
        );
        assert!(
            t.bindings
                .contains(&bind("asw.partner.out", "asw.partner.out.TH", "TH"))
        );
    }

    #[test]
    fn each_back_office_gets_its_own_user_queues_and_rights() {
        let office =
            |name: &str, sends: &[DocumentKind], receives: &[DocumentKind], from| BackOffice {
                name: name.into(),
                sends: sends.to_vec(),
                receives: receives.to_vec(),
                from,
            };
        let (formd, formd_ack, formd_status) = (
            DocumentKind::FormD,
            DocumentKind::FormDAck,
            DocumentKind::FormDStatus,
        );
        let (acdd, acdd_response) = (DocumentKind::Acdd, DocumentKind::AcddResponse);
        let t = Topology::hub(state("VN"), &[state("TH")], &RetryPolicy::default(), 20)
            .with_back_offices(&[
                office(
                    "trade-ministry",
                    &[formd, formd_status],
                    &[formd, formd_ack, formd_status],
                    Vec::new(),
                ),
                office(
                    "customs",
                    &[acdd, acdd_response],
                    &[acdd],
                    vec![state("TH")],
                ),
            ]);
        let trade = &t.users[1];
        assert_eq!(trade.name, "trade-ministry");
        assert_eq!(trade.partner, None);
        assert_eq!(
            trade.permissions,
            Permissions {
                configure: "^$".into(),
                write: "^asw\\.outbound$".into(),
                read: "^(asw\\.backoffice\\.trade-ministry\\.documents|\
                       asw\\.backoffice\\.trade-ministry\\.outcomes)$"
                    .into(),
            }
        );
        assert_eq!(
            trade.topic_permissions,
            [TopicPermission {
                exchange: "asw.outbound".into(),
                write: "^(formd|formd-status)$".into(),
                read: "^$".into(),
            }]
        );
        assert_eq!(
            t.users[2].topic_permissions[0].write,
            "^(acdd|acdd-response)$"
        );
        let bound = |queue: &str| -> Vec<String> {
            t.bindings
                .iter()
                .filter(|b| b.queue == queue)
                .inspect(|b| assert_eq!(b.exchange, "asw.inbound"))
                .map(|b| b.routing_key.clone())
                .collect()
        };
        assert_eq!(
            bound("asw.backoffice.trade-ministry.documents"),
            ["formd.*", "formd-ack.*", "formd-status.*"]
        );
        assert_eq!(
            bound("asw.backoffice.trade-ministry.outcomes"),
            ["outcome.formd.*", "outcome.formd-status.*"]
        );
        assert_eq!(bound("asw.backoffice.customs.documents"), ["acdd.TH"]);
        assert_eq!(
            bound("asw.backoffice.customs.outcomes"),
            ["outcome.acdd.*", "outcome.acdd-response.*"]
        );
        // Without back-offices, the topology is the hub's alone.
        let plain = Topology::hub(state("VN"), &[state("TH")], &RetryPolicy::default(), 20);
        assert_eq!(plain.clone().with_back_offices(&[]), plain);
    }

    #[test]
    fn consumed_queues_are_delivery_limited_into_the_parking_lot() {
        let t = Topology::hub(state("VN"), &[state("TH")], &RetryPolicy::default(), 7);
        let names: Vec<&str> = t.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["asw-delivery-limit", "asw-parked"]);
        let limit = &t.policies[0];
        assert_eq!(
            limit.pattern,
            "^(asw\\.hub\\.outbound|asw\\.hub\\.inbound|asw\\.partner\\.out\\.[A-Z]{2}|asw\\.ippc\\.out\\.[A-Z]{2}|asw\\.ippc\\.in)$"
        );
        assert_eq!(
            limit.definition[..3],
            [
                ("delivery-limit".into(), Argument::Int(7)),
                ("dead-letter-exchange".into(), Argument::Str(String::new())),
                (
                    "dead-letter-routing-key".into(),
                    Argument::Str("asw.parked".into())
                ),
            ]
        );
        assert_eq!(t.policies[1].pattern, "^asw\\.parked$");
        // No queue is matched by both policies, and no policy key is also a queue argument
        // (arguments would win): the retry queues keep their own dead-letter target.
        for queue in &t.queues {
            let keys: Vec<String> = queue
                .arguments
                .iter()
                .map(|(k, _)| k.trim_start_matches("x-").to_owned())
                .collect();
            for policy in &t.policies {
                if matches(&policy.pattern, &queue.name) {
                    assert!(
                        policy.definition.iter().all(|(k, _)| !keys.contains(k)),
                        "{} sets what {} declares",
                        policy.name,
                        queue.name
                    );
                }
            }
        }
        let covered: Vec<&str> = t
            .queues
            .iter()
            .map(|q| q.name.as_str())
            .filter(|q| matches(&limit.pattern, q))
            .collect();
        assert_eq!(
            covered,
            ["asw.hub.outbound", "asw.hub.inbound", "asw.partner.out.TH"]
        );
    }

    /// Matches the one shape of pattern the hub's policies use: `^(a|b|c\\.[A-Z]{2})$` or `^a$`
    /// with `\\.` for dots (no regex crate in a pure crate for one test).
    fn matches(pattern: &str, name: &str) -> bool {
        let body = pattern
            .trim_start_matches('^')
            .trim_end_matches('$')
            .trim_start_matches('(')
            .trim_end_matches(')');
        body.split('|').any(|alternative| {
            let alternative = alternative.replace("\\.", ".");
            match alternative.strip_suffix("[A-Z]{2}") {
                Some(prefix) => name.strip_prefix(prefix).is_some_and(|code| {
                    code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())
                }),
                None => name == alternative,
            }
        })
    }

    #[test]
    fn retry_policy_backs_off_then_parks() {
        let retry = RetryPolicy {
            delays_ms: vec![1_000, 10_000],
            max_attempts: 4,
        };
        assert_eq!(retry.delay_after(1), Some(1_000));
        assert_eq!(retry.delay_after(2), Some(10_000));
        assert_eq!(retry.delay_after(3), Some(10_000));
        assert_eq!(retry.delay_after(4), None);
        assert_eq!(
            RetryPolicy {
                delays_ms: Vec::new(),
                max_attempts: 5
            }
            .delay_after(1),
            None
        );
    }
}
