//! The journal queries the console and `aswctl messages` share: a message by id in either
//! direction, and the whole conversation of a document.

use std::collections::{BTreeSet, VecDeque};

use asw_journal::{Direction, Journal, JournalError, MessageRecord, MessageSummary};
use uuid::Uuid;

/// How many answers-of-answers a conversation follows.
pub const TRACE_DEPTH: usize = 8;
/// The most messages a conversation shows.
pub const TRACE_MAX: usize = 1000;

/// The records under `id`, of `direction` or both, in [`Direction::ALL`] order.
pub fn records(
    journal: &dyn Journal,
    id: Uuid,
    direction: Option<Direction>,
) -> Result<Vec<MessageRecord>, JournalError> {
    let mut found = Vec::new();
    for d in Direction::ALL {
        if direction.is_none_or(|want| want == d)
            && let Some(r) = journal.get(d, id)?
        {
            found.push(r);
        }
    }
    Ok(found)
}

/// Every message of the conversation `id` belongs to, in time order: up to the original by
/// correlation ids, then down through every answer (of either direction). `None` if `id` is not
/// journaled.
pub fn conversation(
    journal: &dyn Journal,
    id: Uuid,
) -> Result<Option<Vec<MessageSummary>>, JournalError> {
    let Some(start) = records(journal, id, None)?.into_iter().next() else {
        return Ok(None);
    };
    // Up: the original this message answers, and the one that answers, ...
    let mut root = start.summary;
    for _ in 0..TRACE_DEPTH {
        let Some(original) = root.header.correlation_id else {
            break;
        };
        let mut found = None;
        for d in Direction::ALL {
            if let Some(r) = journal.find_original(d, original)? {
                found = Some(r);
                break;
            }
        }
        match found {
            Some(r) => root = r.summary,
            None => break,
        }
    }
    // Down: every record under the root's id, then everything answering what was found.
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in records(journal, root.header.message_id, None)? {
        if seen.insert((r.summary.direction, r.summary.header.message_id)) {
            out.push(r.summary);
        }
    }
    let mut queue = VecDeque::from([(root.header.message_id, 0)]);
    while let Some((id, depth)) = queue.pop_front() {
        if depth >= TRACE_DEPTH || out.len() >= TRACE_MAX {
            break;
        }
        for answer in journal.answers(id)? {
            let key = (answer.direction, answer.header.message_id);
            if seen.insert(key) {
                queue.push_back((answer.header.message_id, depth + 1));
                out.push(answer);
            }
        }
    }
    out.sort_by_key(|m| (m.first_seen, m.direction, m.header.message_id));
    Ok(Some(out))
}
