//! `X-Hub-Signature-256` is checked before anything else reads a request, so the check
//! itself sees every attacker's header: it never panics, and a header made by `sign` for
//! the same secret and body always verifies (and stops verifying if the body changes).
#![no_main]

use frontdesk::whatsapp::signature::{SignatureError, sign, verify};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let secret: &[u8] = u.arbitrary()?;
    let header: Option<&str> = u.arbitrary()?;
    let body: &[u8] = u.take_rest();

    // Arbitrary headers: any verdict, never a panic; a missing header is `Missing`.
    let verdict = verify(secret, body, header);
    if header.is_none() {
        assert_eq!(verdict, Err(SignatureError::Missing));
    }
    // A header that verifies is exactly the one `sign` makes (hex case and surrounding
    // whitespace aside).
    if verdict.is_ok() {
        let good = sign(secret, body);
        assert_eq!(header.unwrap().trim().to_ascii_lowercase(), good);
    }

    // The genuine signature verifies, with the whitespace a proxy might add, too.
    let good = sign(secret, body);
    assert_eq!(verify(secret, body, Some(&good)), Ok(()), "own signature refused");
    assert_eq!(verify(secret, body, Some(&format!(" {good}\t"))), Ok(()));
    // One changed byte of the body, or a byte more, is a mismatch.
    let mut longer = body.to_vec();
    longer.push(0);
    assert_eq!(verify(secret, &longer, Some(&good)), Err(SignatureError::Mismatch));
    if let Some(first) = body.first() {
        let mut changed = body.to_vec();
        changed[0] = first ^ 1;
        assert_eq!(verify(secret, &changed, Some(&good)), Err(SignatureError::Mismatch));
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
