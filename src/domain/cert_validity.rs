//! When a certificate stops being valid, and whether it is time to renew it. Reads the
//! one field renewal needs (`tbsCertificate.validity.notAfter`) straight from the DER, so
//! the binary carries no X.509 parser for it.

/// Unix seconds at which the DER certificate expires, or `None` if it is not a
/// certificate this reader understands.
pub fn not_after(cert_der: &[u8]) -> Option<i64> {
    let (tag, certificate, _) = element(cert_der)?;
    expect(tag, 0x30)?;
    let (tag, tbs, _) = element(certificate)?;
    expect(tag, 0x30)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, when present.
    let (tag, _, after) = element(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature algorithm, issuer, then validity.
    for wanted in [0x02, 0x30, 0x30] {
        let (tag, _, after) = element(rest)?;
        expect(tag, wanted)?;
        rest = after;
    }
    let (tag, validity, _) = element(rest)?;
    expect(tag, 0x30)?;
    let (_, _, after_not_before) = element(validity)?;
    let (tag, not_after, _) = element(after_not_before)?;
    time(tag, std::str::from_utf8(not_after).ok()?)
}

/// Whether a certificate expiring at `not_after` should be renewed at `now` (both Unix
/// seconds): within `renew_before_days` of the end, or already expired.
pub fn renewal_due(not_after: i64, now: i64, renew_before_days: u32) -> bool {
    now >= not_after - i64::from(renew_before_days) * 86_400
}

fn expect(tag: u8, wanted: u8) -> Option<()> {
    (tag == wanted).then_some(())
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let len = rest[..octets]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[octets..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, minute, second) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(super::calendar::days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps contents in a DER element.
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(contents);
        out
    }

    fn certificate(with_version: bool, not_after: (u8, &str)) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(0xa0, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[0x01, 0x23]));
        tbs.extend(der(0x30, &der(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(der(0x30, &[0x31; 200])); // a long issuer: the long length form
        let validity = [der(0x17, b"240101000000Z"), der(not_after.0, not_after.1.as_bytes())].concat();
        tbs.extend(der(0x30, &validity));
        tbs.extend(der(0x30, b"subject"));
        der(0x30, &[der(0x30, &tbs), der(0x30, b"alg"), der(0x03, b"sig")].concat())
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        assert_eq!(
            not_after(&certificate(true, (0x17, "250301120000Z"))),
            Some(1_740_830_400)
        );
        assert_eq!(
            not_after(&certificate(false, (0x17, "250301120000Z"))),
            Some(1_740_830_400)
        );
        assert_eq!(
            not_after(&certificate(true, (0x18, "20991231235959Z"))),
            Some(4_102_444_799)
        );
        assert_eq!(not_after(&certificate(true, (0x17, "700101000000Z"))), Some(0));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"-----BEGIN CERTIFICATE-----"), None);
        assert_eq!(not_after(&certificate(true, (0x17, "25030112000Z"))), None);
        assert_eq!(not_after(&certificate(true, (0x17, "251301120000Z"))), None);
        let mut truncated = certificate(true, (0x17, "250301120000Z"));
        truncated.truncate(truncated.len() - 10);
        assert_eq!(not_after(&truncated), None);
    }

    #[test]
    fn renewal_is_due_inside_the_window_or_after_expiry() {
        let end = 1_000 * 86_400;
        assert!(!renewal_due(end, end - 31 * 86_400, 30));
        assert!(renewal_due(end, end - 30 * 86_400, 30));
        assert!(renewal_due(end, end + 1, 30));
        assert!(!renewal_due(end, end - 1, 0));
    }
}
