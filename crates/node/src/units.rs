//! Sizes and times as people write them in flags and environment variables: `500K`, `2M`, `1.5G`, `10GiB` or plain
//! bytes (binary units, K = 1024); Unix seconds or a date `YYYY-MM-DD`. Every value is checked for range, so a typo
//! is refused with a message instead of becoming a huge or negative number.

/// A size or a time as written that does not parse; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// A size in bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(UnitError(format!(
                "unknown size unit {other:?} (use K, M, G or T)"
            )));
        }
    };
    let not_a_size = || UnitError(format!("{text:?} is not a size such as 500K, 2M or 10G"));
    let out_of_range = || UnitError(format!("{text:?} is out of range"));
    if !number.contains('.') {
        // Whole numbers exactly: a count of bytes above 2^53 must not be rounded by a float.
        let value: u64 = number
            .parse()
            .map_err(|e: std::num::ParseIntError| match e.kind() {
                std::num::IntErrorKind::PosOverflow => out_of_range(),
                _ => not_a_size(),
            })?;
        return value
            .checked_mul(1u64 << shift)
            .filter(|bytes| *bytes < u64::MAX)
            .ok_or_else(out_of_range);
    }
    let value: f64 = number.parse().map_err(|_| not_a_size())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(out_of_range());
    }
    Ok(bytes as u64)
}

/// Unix seconds, or a calendar date YYYY-MM-DD taken as midnight UTC.
pub fn parse_since(text: &str) -> Result<u64, UnitError> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let parts: Vec<&str> = text.split('-').collect();
    let bad = || {
        UnitError(format!(
            "{text:?} is neither Unix seconds nor a date YYYY-MM-DD"
        ))
    };
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("500K"), Ok(500 * 1024));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("1.2.3G").is_err());
        assert!(parse_size("99999999999T").is_err());
        // Exact, not rounded through a float.
        assert_eq!(parse_size("9007199254740993"), Ok(9_007_199_254_740_993));
        assert_eq!(parse_size("18446744073709551614"), Ok(u64::MAX - 1));
        assert!(parse_size("18446744073709551615").is_err());
        assert!(parse_size("18446744073709551616").is_err());
        assert!(parse_size("16777216T").is_err());
    }

    #[test]
    fn since_accepts_seconds_and_dates() {
        assert_eq!(parse_since("0"), Ok(0));
        assert_eq!(parse_since("1970-01-01"), Ok(0));
        assert_eq!(parse_since("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_since("2026-11-24"), Ok(1_795_478_400));
        assert!(parse_since("2026-13-01").is_err());
        assert!(parse_since("yesterday").is_err());
    }
}
