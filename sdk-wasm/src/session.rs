//! Session rules. A new session starts when there is none, after `idle_ms` without events
//! (30 min by default), when the current one is 24 h old, or when the visitor arrives on a
//! different campaign (UTM parameters) than the session's.

use alloc::string::String;

use crate::json::push_u64;
use crate::text::{cut, int};

/// Longest a session may last.
pub const MAX_SESSION_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// 1 for the visitor's first session.
    pub index: u32,
    pub started_ms: u64,
    /// Time of the latest event in the session.
    pub last_ms: u64,
    pub previous_id: Option<String>,
    /// See [`crate::url::campaign`]; empty when the session began without one.
    pub campaign: String,
}

/// Why a new session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    First,
    Idle,
    MaxLength,
    Campaign,
}

/// Whether an event at `now`, on a page with `campaign` (empty: none), needs a new session.
pub fn needs_new(current: Option<&Session>, now: u64, campaign: &str, idle_ms: u64) -> Option<Why> {
    let Some(s) = current else {
        return Some(Why::First);
    };
    if now > s.last_ms && now - s.last_ms > idle_ms {
        Some(Why::Idle)
    } else if now >= s.started_ms.saturating_add(MAX_SESSION_MS) {
        Some(Why::MaxLength)
    } else if !campaign.is_empty() && campaign != s.campaign {
        Some(Why::Campaign)
    } else {
        None
    }
}

/// The session that follows `previous` (which may have expired, or be absent).
pub fn next(previous: Option<&Session>, id: String, now: u64, campaign: &str) -> Session {
    Session {
        id,
        index: previous.map_or(1, |p| p.index.saturating_add(1)),
        started_ms: now,
        last_ms: now,
        previous_id: previous.map(|p| p.id.clone()),
        campaign: campaign.into(),
    }
}

impl Session {
    /// Records an event at `now` (a clock that went backwards never shortens the session).
    pub fn touch(&mut self, now: u64) {
        self.last_ms = self.last_ms.max(now);
    }

    /// `id|index|started|last|previous|campaign` — campaign last, it may contain `|`.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(96);
        s.push_str(&self.id);
        s.push('|');
        push_u64(&mut s, u64::from(self.index));
        s.push('|');
        push_u64(&mut s, self.started_ms);
        s.push('|');
        push_u64(&mut s, self.last_ms);
        s.push('|');
        s.push_str(self.previous_id.as_deref().unwrap_or(""));
        s.push('|');
        s.push_str(&self.campaign);
        s
    }

    pub fn decode(s: &str) -> Option<Session> {
        let (id, s) = cut(s, b'|')?;
        let (index, s) = cut(s, b'|')?;
        let (started, s) = cut(s, b'|')?;
        let (last, s) = cut(s, b'|')?;
        let (prev, campaign) = cut(s, b'|')?;
        (!id.is_empty()).then_some(())?;
        Some(Session {
            id: id.into(),
            index: u32::try_from(int(index)?).ok()?,
            started_ms: int(started)?,
            last_ms: int(last)?,
            previous_id: (!prev.is_empty()).then(|| prev.into()),
            campaign: campaign.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const IDLE: u64 = 30 * MIN;

    fn s(started: u64, last: u64, campaign: &str) -> Session {
        Session {
            id: "s1".into(),
            index: 3,
            started_ms: started,
            last_ms: last,
            previous_id: None,
            campaign: campaign.into(),
        }
    }

    #[test]
    fn rules() {
        let t0 = 1_000_000_000;
        let cases: &[(Option<Session>, u64, &str, Option<Why>)] = &[
            (None, t0, "", Some(Why::First)),
            (Some(s(t0, t0, "")), t0 + IDLE, "", None),
            (Some(s(t0, t0, "")), t0 + IDLE + 1, "", Some(Why::Idle)),
            // Activity keeps it alive past 30 minutes from its start...
            (Some(s(t0, t0 + 20 * MIN, "")), t0 + 45 * MIN, "", None),
            // ...but not past 24 hours.
            (
                Some(s(t0, t0 + MAX_SESSION_MS - MIN, "")),
                t0 + MAX_SESSION_MS,
                "",
                Some(Why::MaxLength),
            ),
            // A new campaign starts a new session; no campaign or the same one does not.
            (
                Some(s(t0, t0, "news||spring||")),
                t0 + MIN,
                "ads||spring||",
                Some(Why::Campaign),
            ),
            (
                Some(s(t0, t0, "news||spring||")),
                t0 + MIN,
                "news||spring||",
                None,
            ),
            (Some(s(t0, t0, "news||spring||")), t0 + MIN, "", None),
            (
                Some(s(t0, t0, "")),
                t0 + MIN,
                "news||||",
                Some(Why::Campaign),
            ),
            // A clock that went backwards is no reason.
            (Some(s(t0, t0, "")), t0 - IDLE * 2, "", None),
        ];
        for (i, (cur, now, camp, want)) in cases.iter().enumerate() {
            assert_eq!(needs_new(cur.as_ref(), *now, camp, IDLE), *want, "case {i}");
        }
    }

    #[test]
    fn custom_timeout() {
        let cur = s(0, 0, "");
        assert_eq!(
            needs_new(Some(&cur), 5 * MIN + 1, "", 5 * MIN),
            Some(Why::Idle)
        );
        assert_eq!(needs_new(Some(&cur), 5 * MIN, "", 5 * MIN), None);
    }

    #[test]
    fn chaining_and_storage() {
        let first = next(None, "a".into(), 10, "");
        assert_eq!((first.index, first.previous_id.as_deref()), (1, None));
        let mut second = next(Some(&first), "b".into(), 20, "x|y");
        assert_eq!(
            (second.index, second.previous_id.as_deref()),
            (2, Some("a"))
        );
        second.touch(30);
        second.touch(25);
        assert_eq!(second.last_ms, 30);
        assert_eq!(Session::decode(&second.encode()), Some(second.clone()));
        assert_eq!(Session::decode(&first.encode()), Some(first));
        for bad in ["", "x", "a|b|1|2||", "|1|2|3||", "a|1|2"] {
            assert_eq!(Session::decode(bad), None, "{bad}");
        }
    }
}
