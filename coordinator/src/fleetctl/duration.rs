//! Durations on the command line: a whole number and a unit, `500ms`, `30s`, `10m`, `2h`,
//! `1d`, at most [`MAX_DURATION`].

use std::time::Duration;

/// The longest duration a flag takes (366 days).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Parses a duration flag's value; clap names the flag and quotes the value around the
/// message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(
                "expected a whole number and a unit (ms, s, m, h, d), e.g. 30s, 10m, 2h, 1d".into(),
            )
        }
    };
    if digits.is_empty() {
        return Err("expected a whole number before the unit, e.g. 30s, 10m, 2h, 1d".into());
    }
    let too_long = || format!("longer than {}d", MAX_DURATION.as_secs() / 86_400);
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    let ms = n.checked_mul(unit_ms).ok_or_else(too_long)?;
    let d = Duration::from_millis(ms);
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// `--max-duration`: a duration of whole seconds from 1 s to
/// [`fleetcal_proto::pb::MAX_DURATION_S`] (a week), as the campaign's `max_duration_s`.
pub fn parse_max_duration(text: &str) -> Result<u32, String> {
    let max = fleetcal_proto::pb::MAX_DURATION_S;
    let range = || format!("must be whole seconds from 1s to {}d", max / 86_400);
    let d = parse_duration(text)?;
    if d.subsec_nanos() != 0 {
        return Err(range());
    }
    u32::try_from(d.as_secs())
        .ok()
        .filter(|s| (1..=max).contains(s))
        .ok_or_else(range)
}

/// A duration in whole milliseconds, as the coordinator's requests carry them.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bounds() {
        let ms = |t: &str| parse_duration(t).map(millis);
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms(" 10m "), Ok(600_000));
        assert_eq!(ms("2h"), Ok(7_200_000));
        assert_eq!(ms("1d"), Ok(86_400_000));
        assert_eq!(ms("0s"), Ok(0));
        assert_eq!(ms("366d"), Ok(366 * 86_400_000));
        for bad in ["", "10", "s", "1.5h", "-1h", "1 h", "1w", "2h30m", "1H"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("e.g. 30s"), "{bad:?}: {e}");
        }
        assert_eq!(parse_max_duration("90s"), Ok(90));
        assert_eq!(parse_max_duration("10m"), Ok(600));
        assert_eq!(parse_max_duration("7d"), Ok(604_800));
        for bad in ["0s", "500ms", "1500ms", "8d", "366d"] {
            assert_eq!(
                parse_max_duration(bad).unwrap_err(),
                "must be whole seconds from 1s to 7d",
                "{bad}"
            );
        }
        assert!(parse_max_duration("10").unwrap_err().contains("e.g. 30s"));
        for huge in ["367d", "99999999999999999999d", "18446744073709551615d"] {
            assert_eq!(
                parse_duration(huge).unwrap_err(),
                "longer than 366d",
                "{huge}"
            );
        }
    }
}
