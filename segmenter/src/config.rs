//! Run configuration: loaded once (TOML, `deny_unknown_fields`), validated purely, then used.

use serde::{Deserialize, Serialize};

/// Thresholds of the lifecycle stage in `profiles_dynamic.lifecycle_stage`. The first rule
/// that matches wins, in this order:
///
/// 1. `churned`: not seen for `churned_after_days` days or more;
/// 2. `at_risk`: not seen for `at_risk_after_days` days or more;
/// 3. `new`: first seen less than `new_within_days` days ago;
/// 4. `returning`: the last visit came after a gap of `returning_gap_days` days or more;
/// 5. `loyal`: active on `loyal_min_active_days` of the last 30 days, or `loyal_min_orders`
///    orders or more;
/// 6. `active`: everyone else (seen recently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    pub new_within_days: u32,
    pub at_risk_after_days: u32,
    pub churned_after_days: u32,
    pub returning_gap_days: u32,
    pub loyal_min_active_days: u32,
    pub loyal_min_orders: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            new_within_days: 7,
            at_risk_after_days: 30,
            churned_after_days: 90,
            returning_gap_days: 14,
            loyal_min_active_days: 8,
            loyal_min_orders: 3,
        }
    }
}

impl Lifecycle {
    pub fn validate(&self) -> Result<(), String> {
        if self.at_risk_after_days == 0 || self.at_risk_after_days >= self.churned_after_days {
            return Err(format!(
                "lifecycle.at_risk_after_days ({}) must be at least 1 and less than churned_after_days ({})",
                self.at_risk_after_days, self.churned_after_days
            ));
        }
        if self.churned_after_days > 3650 {
            return Err("lifecycle.churned_after_days must be at most 3650".into());
        }
        if self.loyal_min_active_days > 30 {
            return Err(
                "lifecycle.loyal_min_active_days counts days of the last 30: at most 30".into(),
            );
        }
        Ok(())
    }
}

/// The segmenter's configuration file (`--config`), every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub lifecycle: Lifecycle,
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.lifecycle.validate()?;
        Ok(config)
    }
}

/// Parses `30s`, `5m`, `2h` or `1d` into seconds.
pub fn parse_interval(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not an interval such as 30s, 5m, 2h or 1d"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d (e.g. 5m)")),
    };
    match n.checked_mul(factor) {
        Some(0) => Err("the interval must be longer than zero".into()),
        Some(secs) if secs <= 7 * 86_400 => Ok(secs),
        _ => Err(format!("{text:?} is longer than a week")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5m"), Ok(300));
        assert_eq!(parse_interval("30s"), Ok(30));
        assert_eq!(parse_interval("2h"), Ok(7200));
        assert_eq!(parse_interval("1d"), Ok(86_400));
        for bad in [
            "",
            "m",
            "5",
            "5x",
            "0s",
            "99999999999999999999d",
            "8d",
            "-1m",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_file() {
        let config = Config::from_toml("[lifecycle]\nchurned_after_days = 60\n").unwrap();
        assert_eq!(config.lifecycle.churned_after_days, 60);
        assert_eq!(config.lifecycle.new_within_days, 7);
        let err = Config::from_toml("[lifecycle]\nchurn = 3\n").unwrap_err();
        assert!(err.contains("unknown field `churn`"), "{err}");
        let err = Config::from_toml("[lifecycle]\nat_risk_after_days = 100\n").unwrap_err();
        assert!(err.contains("less than churned_after_days"), "{err}");
    }
}
