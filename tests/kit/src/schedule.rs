//! EventBridge schedule expressions, checked as EventBridge checks them:
//! cfn-lint and `sam validate` accept `rate(3 minutez)`, AWS does not.
//!
//! - `rate(N unit)`: N ≥ 1, unit `minute|minutes|hour|hours|day|days`, singular
//!   exactly when N = 1.
//! - `cron(min hour day-of-month month day-of-week year)`: six fields; one of
//!   day-of-month and day-of-week must be `?`.

/// `Ok(())` or why the expression would be refused.
pub fn validate(expr: &str) -> Result<(), String> {
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        return rate(inner);
    }
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        return cron(inner);
    }
    if expr.starts_with("at(") {
        return Err("one-time at() schedules are not what this product runs".into());
    }
    Err(format!("{expr:?} is neither rate(...) nor cron(...)"))
}

fn rate(inner: &str) -> Result<(), String> {
    let parts: Vec<&str> = inner.split(' ').collect();
    let [n, unit] = parts[..] else {
        return Err(format!("rate({inner}): expected \"N unit\""));
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("rate({inner}): {n:?} is not a positive whole number"))?;
    if n == 0 {
        return Err(format!("rate({inner}): the value must be at least 1"));
    }
    let singular = matches!(unit, "minute" | "hour" | "day");
    let plural = matches!(unit, "minutes" | "hours" | "days");
    match (singular, plural, n == 1) {
        (true, _, true) | (_, true, false) => Ok(()),
        (false, false, _) => Err(format!("rate({inner}): unknown unit {unit:?}")),
        _ => Err(format!(
            "rate({inner}): use the singular unit for 1 and the plural otherwise"
        )),
    }
}

fn cron(inner: &str) -> Result<(), String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron({inner}): expected 6 fields, found {}",
            fields.len()
        ));
    };
    field("minutes", min, 0, 59, &[])?;
    field("hours", hour, 0, 23, &[])?;
    field("month", month, 1, 12, &MONTHS)?;
    field("year", year, 1970, 2199, &[])?;
    match (dom, dow) {
        ("?", "?") => {
            return Err(format!(
                "cron({inner}): day-of-month and day-of-week cannot both be ?"
            ));
        }
        ("?", _) => day_of_week(dow)?,
        (_, "?") => day_of_month(dom)?,
        _ => {
            return Err(format!(
                "cron({inner}): one of day-of-month and day-of-week must be ?"
            ));
        }
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn day_of_month(v: &str) -> Result<(), String> {
    if v == "L"
        || v.strip_suffix('W')
            .is_some_and(|d| d.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)))
    {
        return Ok(());
    }
    field("day-of-month", v, 1, 31, &[])
}

fn day_of_week(v: &str) -> Result<(), String> {
    if let Some((d, nth)) = v.split_once('#') {
        let nth_ok = nth.parse::<u32>().is_ok_and(|n| (1..=5).contains(&n));
        return if nth_ok {
            field("day-of-week", d, 1, 7, &DAYS)
        } else {
            Err(format!("day-of-week {v:?}"))
        };
    }
    if let Some(d) = v.strip_suffix('L').filter(|d| !d.is_empty()) {
        return field("day-of-week", d, 1, 7, &DAYS);
    }
    field("day-of-week", v, 1, 7, &DAYS)
}

/// `*`, values, names, ranges `a-b`, lists `a,b` and increments `x/n`.
fn field(name: &str, v: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(lo + i as u32);
        }
        let n: u32 = s
            .parse()
            .map_err(|_| format!("{name}: {s:?} is not a value"))?;
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{name}: {n} is outside {lo}-{hi}"))
        }
    };
    for part in v.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (part, None),
        };
        if let Some(step) = step {
            let s: u32 = step
                .parse()
                .map_err(|_| format!("{name}: increment {step:?} is not a number"))?;
            if s == 0 {
                return Err(format!("{name}: increment must be at least 1"));
            }
        }
        if base == "*" {
            continue;
        }
        match base.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(format!("{name}: range {base:?} runs backwards"));
                }
            }
            None => {
                value(base)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn eventbridge_accepts_these() {
        for ok in [
            "rate(1 minute)",
            "rate(3 minutes)",
            "rate(10 minutes)",
            "rate(1 day)",
            "cron(0 2 * * ? *)",
            "cron(*/3 * * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(15 10 ? * 6L 2026-2030)",
            "cron(0 8 1W * ? *)",
            "cron(0 0 ? * 2#1 *)",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn eventbridge_refuses_these() {
        for bad in [
            "rate(3 minutez)",
            "rate(1 minutes)",
            "rate(3 minute)",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(3minutes)",
            "cron(0 2 * * *)",
            "cron(0 2 * * * *)",
            "cron(0 2 ? * ? *)",
            "cron(60 2 * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 2 32 * ? *)",
            "cron(0 2 ? * FUNDAY *)",
            "cron(0 2 * 13 ? *)",
            "cron(*/0 * * * ? *)",
            "every 3 minutes",
        ] {
            assert!(validate(bad).is_err(), "{bad} should be refused");
        }
    }
}
