//! HTTP/1.1 on the wire: prebuilt request bytes, and an incremental parser of one response.

/// The full bytes of one `POST` request, built once per body so the hot loop only copies them out.
#[must_use]
pub fn request_bytes(host_header: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What the bytes read so far say about the response.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A whole response: its status, and whether the server will close the connection after it.
    Done { status: u16, close: bool },
    /// Not a response this client can frame (the connection must be dropped).
    Invalid(&'static str),
}

enum Framing {
    Length(usize),
    Chunked,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parse `buf` (every byte of the response read so far). No pipelining, so a response is the whole buffer.
#[must_use]
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        // A header block past 64 KiB is not driftline's; refuse it rather than buffer without bound.
        return if buf.len() > 65_536 {
            Parsed::Invalid("response headers over 64 KiB")
        } else {
            Parsed::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Parsed::Invalid("response headers are not UTF-8");
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Parsed::Invalid("malformed status line");
    };
    let Ok(status) = code.parse::<u16>() else {
        return Parsed::Invalid("malformed status code");
    };
    let mut close = version == "HTTP/1.0";
    let mut framing = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => framing = Some(Framing::Length(n)),
                Err(_) => return Parsed::Invalid("malformed Content-Length"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Some(Framing::Chunked);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let body = &buf[end + 4..];
    let complete = match framing {
        Some(Framing::Length(n)) => body.len() >= n,
        Some(Framing::Chunked) => match chunked_complete(body) {
            Ok(done) => done,
            Err(why) => return Parsed::Invalid(why),
        },
        None => return Parsed::Invalid("response has neither Content-Length nor chunked encoding"),
    };
    if complete {
        Parsed::Done { status, close }
    } else {
        Parsed::Incomplete
    }
}

/// Whether a chunked body is complete (its last chunk and the empty line after any trailers have arrived).
fn chunked_complete(mut body: &[u8]) -> Result<bool, &'static str> {
    loop {
        let Some(eol) = find(body, b"\r\n") else {
            return Ok(false);
        };
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| "malformed chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "malformed chunk size")?;
        let rest = &body[eol + 2..];
        if size == 0 {
            // Trailers (usually none) end with an empty line.
            return Ok(rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some());
        }
        if rest.len() < size + 2 {
            return Ok(false);
        }
        body = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_length_host_and_headers() {
        let bytes = request_bytes("127.0.0.1:80", "/x", &[("A".into(), "b".into())], b"{}");
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert!(text.starts_with("POST /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("A: b\r\n\r\n{}"));
    }

    #[test]
    fn content_length_framing() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(parse(&full[..full.len() - 1]), Parsed::Incomplete);
        assert_eq!(
            parse(full),
            Parsed::Done {
                status: 200,
                close: false
            }
        );
        let closing = b"HTTP/1.1 500 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(
            parse(closing),
            Parsed::Done {
                status: 500,
                close: true
            }
        );
    }

    #[test]
    fn chunked_framing() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for cut in 1..full.len() {
            assert_eq!(parse(&full[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        assert_eq!(
            parse(full),
            Parsed::Done {
                status: 200,
                close: false
            }
        );
    }

    #[test]
    fn unframed_and_garbage_are_invalid() {
        assert!(matches!(parse(b"HTTP/1.1 200 OK\r\n\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"garbage\r\n\r\n"), Parsed::Invalid(_)));
    }
}
