//! Plain text read as a stream: UTF-8 checked chunk by chunk (a character split across
//! chunks is carried over), whitespace collapsed to single spaces, and the reading stops
//! once `max_chars` characters are kept — so a 40 MiB text file costs a few KiB, not a
//! copy of itself three times over.

/// Collapses whitespace of text fed in chunks, keeping at most `max_chars` characters.
#[derive(Debug)]
pub struct CollapsedText {
    out: String,
    max_chars: usize,
    chars: usize,
    pending_space: bool,
    carry: Vec<u8>,
    truncated: bool,
}

impl CollapsedText {
    pub fn new(max_chars: usize) -> CollapsedText {
        CollapsedText {
            out: String::new(),
            max_chars,
            chars: 0,
            pending_space: false,
            carry: Vec::new(),
            truncated: false,
        }
    }

    /// Whether enough text was kept: the rest of the input need not be read.
    pub fn is_full(&self) -> bool {
        self.truncated
    }

    /// Feeds the next chunk of bytes. An invalid UTF-8 sequence is an error.
    pub fn push_bytes(&mut self, chunk: &[u8]) -> Result<(), String> {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        match std::str::from_utf8(&buf) {
            Ok(s) => self.push_str(s),
            Err(e) if e.error_len().is_none() => {
                let (valid, rest) = buf.split_at(e.valid_up_to());
                self.push_str(std::str::from_utf8(valid).expect("checked prefix"));
                self.carry = rest.to_vec();
            }
            Err(e) => return Err(format!("not UTF-8 (invalid byte near offset {})", e.valid_up_to())),
        }
        Ok(())
    }

    /// Feeds text.
    pub fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            if self.truncated {
                return;
            }
            if c.is_whitespace() {
                self.pending_space = self.chars > 0;
                continue;
            }
            let need = usize::from(self.pending_space) + 1;
            if self.chars + need > self.max_chars {
                self.truncated = true;
                return;
            }
            if self.pending_space {
                self.out.push(' ');
                self.chars += 1;
                self.pending_space = false;
            }
            self.out.push(c);
            self.chars += 1;
        }
    }

    /// The text kept, with `…` when it was cut. An unfinished character at the end is an
    /// error.
    pub fn finish(self) -> Result<String, String> {
        if !self.carry.is_empty() && !self.truncated {
            return Err("not UTF-8 (the file ends inside a character)".into());
        }
        Ok(if self.truncated {
            format!("{}…", self.out)
        } else {
            self.out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collapse(chunks: &[&[u8]], max: usize) -> Result<String, String> {
        let mut t = CollapsedText::new(max);
        for c in chunks {
            t.push_bytes(c)?;
        }
        t.finish()
    }

    #[test]
    fn collapses_cuts_and_checks_utf8_across_chunks() {
        assert_eq!(collapse(&[b"  a \n\t b  ", b"c"], 100).unwrap(), "a b c");
        assert_eq!(collapse(&[b"a b", b"c "], 100).unwrap(), "a bc");
        assert_eq!(collapse(&[b"one two three"], 7).unwrap(), "one two…");
        let e = "é".as_bytes();
        assert_eq!(collapse(&[&[b'x', e[0]], &[e[1], b'y']], 10).unwrap(), "xéy");
        assert!(collapse(&[b"ok \xff"], 10).unwrap_err().contains("not UTF-8"));
        assert!(collapse(&[&[b'a', e[0]]], 10).unwrap_err().contains("ends inside"));
        assert_eq!(collapse(&[b"   "], 10).unwrap(), "");
    }

    #[test]
    fn stops_when_full() {
        let mut t = CollapsedText::new(3);
        t.push_str("abcd");
        assert!(t.is_full());
        assert_eq!(t.finish().unwrap(), "abc…");
    }
}
