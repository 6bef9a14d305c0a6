//! Engaged time and scroll depth of one page view. Time counts while the page is visible
//! and the visitor interacted within the last [`ACTIVE_WINDOW_MS`].

/// How long after an interaction (or after the page became visible) time still counts.
pub const ACTIVE_WINDOW_MS: u64 = 15_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engagement {
    engaged_ms: u64,
    /// Time up to which engagement has been accounted.
    accounted_to: u64,
    last_active: u64,
    visible: bool,
    max_scroll: u8,
}

impl Engagement {
    /// A page view begins at `now`, visible or not; loading the page counts as activity.
    pub fn new(now: u64, visible: bool) -> Self {
        Engagement {
            engaged_ms: 0,
            accounted_to: now,
            last_active: now,
            visible,
            max_scroll: 0,
        }
    }

    fn accrue(&mut self, now: u64) {
        if self.visible {
            let until = now.min(self.last_active.saturating_add(ACTIVE_WINDOW_MS));
            if until > self.accounted_to {
                self.engaged_ms += until - self.accounted_to;
            }
        }
        self.accounted_to = self.accounted_to.max(now);
    }

    pub fn activity(&mut self, now: u64) {
        self.accrue(now);
        self.last_active = self.last_active.max(now);
    }

    pub fn visibility(&mut self, visible: bool, now: u64) {
        self.accrue(now);
        if visible && !self.visible {
            self.last_active = now;
        }
        self.visible = visible;
    }

    pub fn scroll(&mut self, pct: u32) {
        self.max_scroll = self.max_scroll.max(pct.min(100) as u8);
    }

    /// Engaged time so far and the deepest scroll.
    pub fn read(&mut self, now: u64) -> (u64, u8) {
        self.accrue(now);
        (self.engaged_ms, self.max_scroll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_visible_active_time_only() {
        let mut e = Engagement::new(0, true);
        // 15 s window after load, then idle.
        assert_eq!(e.read(10_000).0, 10_000);
        assert_eq!(e.read(60_000).0, 15_000);
        // Interaction at 60 s counts 15 s more (up to 70 s here).
        e.activity(60_000);
        assert_eq!(e.read(70_000).0, 25_000);
        // Hidden time never counts, even right after activity.
        e.activity(70_000);
        e.visibility(false, 72_000);
        assert_eq!(e.read(100_000).0, 27_000);
        // Coming back counts as activity.
        e.visibility(true, 200_000);
        assert_eq!(e.read(203_000).0, 30_000);
    }

    #[test]
    fn continuous_activity_counts_fully() {
        let mut e = Engagement::new(1_000, true);
        for t in (2_000..=61_000).step_by(1_000) {
            e.activity(t);
        }
        assert_eq!(e.read(61_000).0, 60_000);
    }

    #[test]
    fn hidden_start_and_scroll() {
        let mut e = Engagement::new(0, false);
        assert_eq!(e.read(5_000).0, 0);
        e.scroll(40);
        e.scroll(250);
        e.scroll(10);
        assert_eq!(e.read(5_000).1, 100);
        e.visibility(true, 5_000);
        assert_eq!(e.read(7_000).0, 2_000);
        // Hidden and shown again: the time adds up (one page_leave per page view).
        e.visibility(false, 7_000);
        e.visibility(true, 60_000);
        assert_eq!(e.read(61_000), (3_000, 100));
        // A clock going backwards adds nothing.
        assert_eq!(e.read(1_000).0, 3_000);
    }
}
