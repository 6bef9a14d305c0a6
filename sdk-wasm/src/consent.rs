//! Whether the SDK may capture and send anything.

use crate::config::ConsentMode;

/// What the browser says about tracking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// `navigator.doNotTrack == "1"`.
    pub dnt: bool,
    /// `navigator.globalPrivacyControl == true`.
    pub gpc: bool,
}

/// The decision. An explicit choice the visitor made (`stored`) always wins; otherwise
/// opt-in mode waits, and opt-out mode tracks unless DNT or GPC is set and respected.
pub fn allowed(
    mode: ConsentMode,
    stored: Option<bool>,
    signals: Signals,
    respect_signals: bool,
) -> bool {
    match stored {
        Some(choice) => choice,
        None => match mode {
            ConsentMode::OptIn => false,
            ConsentMode::OptOut => !(respect_signals && (signals.dnt || signals.gpc)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentMode::*;

    #[test]
    fn table() {
        let none = Signals::default();
        let dnt = Signals {
            dnt: true,
            gpc: false,
        };
        let gpc = Signals {
            dnt: false,
            gpc: true,
        };
        let cases = [
            (OptOut, None, none, true, true),
            (OptOut, None, dnt, true, false),
            (OptOut, None, gpc, true, false),
            (OptOut, None, dnt, false, true),
            (OptOut, Some(false), none, true, false),
            (OptOut, Some(true), gpc, true, true),
            (OptIn, None, none, true, false),
            (OptIn, None, none, false, false),
            (OptIn, Some(true), dnt, true, true),
            (OptIn, Some(false), none, true, false),
        ];
        for (i, (mode, stored, sig, respect, want)) in cases.into_iter().enumerate() {
            assert_eq!(allowed(mode, stored, sig, respect), want, "case {i}");
        }
    }
}
