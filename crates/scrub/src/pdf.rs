//! PDF: the document information dictionary (`/Info`: Author, Creator, Producer, Title, dates...) and XMP metadata
//! streams (`/Type /Metadata`), blanked in place.
//!
//! Nothing moves: every string value of an Info dictionary becomes the empty string `()` followed by spaces up to
//! its old length, and every uncompressed XMP stream's bytes become spaces. The cross-reference table's byte offsets
//! therefore stay true and the file stays valid without being rewritten (a rewrite would need a full PDF writer).
//!
//! This is a scan of the file's bytes, not a full parser, so it fails closed: what it cannot blank for sure is
//! reported as [`PdfError::Unsupported`] (the caller then treats the file as keeping metadata): an encrypted file,
//! an Info dictionary or XMP stream stored inside a compressed object stream (`/ObjStm`), a compressed XMP stream.
//! A reference to an Info object that is not in the file, or a string that never ends, is malformed.

/// Largest PDF held in memory for scrubbing.
pub const MAX_PDF: u64 = 512 << 20;

/// Why a PDF could not be blanked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PdfError {
    /// The structure is broken at this offset.
    Malformed { offset: usize, reason: &'static str },
    /// The metadata is in a place this scan does not edit; the description is for the user.
    Unsupported(&'static str),
}

/// Blanks the Info dictionaries and XMP streams of `pdf` in place. Returns what was blanked.
pub(crate) fn blank_metadata(pdf: &mut [u8]) -> Result<Vec<&'static str>, PdfError> {
    if !pdf.starts_with(b"%PDF-") {
        return Err(PdfError::Malformed {
            offset: 0,
            reason: "no %PDF- header",
        });
    }
    if find_all(pdf, b"/Encrypt").any(|at| is_name_end(pdf, at + 8)) {
        return Err(PdfError::Unsupported(
            "encrypted PDF: its document info cannot be checked, not scrubbed",
        ));
    }
    let mut removed = Vec::new();
    let mut infos = Vec::new();
    for at in find_all(pdf, b"/Info").filter(|&at| is_name_end(pdf, at + 5)) {
        if let Some(reference) = parse_reference(pdf, at + 5)
            && !infos.contains(&reference)
        {
            infos.push(reference);
        }
    }
    for (number, generation) in infos {
        let objects = object_bodies(pdf, number, generation);
        if objects.is_empty() {
            return Err(if contains(pdf, b"/ObjStm") {
                PdfError::Unsupported(
                    "PDF document info inside a compressed object stream: not scrubbed",
                )
            } else {
                PdfError::Malformed {
                    offset: 0,
                    reason: "the document info object it names is missing",
                }
            });
        }
        for (start, end) in objects {
            blank_strings(pdf, start, end)?;
        }
        removed.push("document info (Author, Creator, Producer, Title, dates)");
    }
    let metadata_streams: Vec<usize> = find_all(pdf, b"/Metadata")
        .filter(|&at| is_name_end(pdf, at + 9) && preceded_by_type(pdf, at))
        .collect();
    for at in metadata_streams {
        blank_xmp_stream(pdf, at)?;
        if !removed.contains(&"XMP metadata") {
            removed.push("XMP metadata");
        }
    }
    // XMP streams are never inside compressed object streams (streams cannot be stored there: ISO 32000 7.5.7),
    // so the scan above saw every one of them.
    Ok(removed)
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find_all(haystack, needle).next().is_some()
}

fn is_delimiter_or_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%\0".contains(&b)
}

/// Whether a name ends at `at` (so that `/Info` does not match `/InfoX`).
fn is_name_end(pdf: &[u8], at: usize) -> bool {
    pdf.get(at).is_none_or(|&b| is_delimiter_or_space(b))
}

fn skip_space(pdf: &[u8], mut at: usize) -> usize {
    while pdf
        .get(at)
        .is_some_and(|b| b.is_ascii_whitespace() || *b == 0)
    {
        at += 1;
    }
    at
}

/// Parses `<digits> <digits>` at `at` (after optional space): returns the two numbers and the offset after them.
fn parse_two_numbers(pdf: &[u8], at: usize) -> Option<(u32, u32, usize)> {
    let (first, at) = parse_number(pdf, skip_space(pdf, at))?;
    let after = skip_space(pdf, at);
    if after == at {
        return None;
    }
    let (second, at) = parse_number(pdf, after)?;
    Some((first, second, at))
}

fn parse_number(pdf: &[u8], at: usize) -> Option<(u32, usize)> {
    let digits = pdf
        .get(at..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let text = std::str::from_utf8(&pdf[at..at + digits]).ok()?;
    Some((text.parse().ok()?, at + digits))
}

/// `N G R` after a key: the referenced object.
fn parse_reference(pdf: &[u8], at: usize) -> Option<(u32, u32)> {
    let (number, generation, at) = parse_two_numbers(pdf, at)?;
    let at = skip_space(pdf, at);
    (pdf.get(at) == Some(&b'R') && is_name_end(pdf, at + 1)).then_some((number, generation))
}

/// The byte ranges between `N G obj` and its `endobj`, for every definition of the object (incremental updates
/// may define it more than once).
fn object_bodies(pdf: &[u8], number: u32, generation: u32) -> Vec<(usize, usize)> {
    let mut bodies = Vec::new();
    for at in find_all(pdf, b"obj") {
        if !is_name_end(pdf, at + 3) || at == 0 {
            continue;
        }
        // Walk back over "N G " before "obj".
        let mut start = at;
        while start > 0 && pdf[start - 1].is_ascii_whitespace() {
            start -= 1;
        }
        let mut digits_start = start;
        while digits_start > 0 && pdf[digits_start - 1].is_ascii_digit() {
            digits_start -= 1;
        }
        let mut before = digits_start;
        while before > 0 && pdf[before - 1].is_ascii_whitespace() {
            before -= 1;
        }
        let mut number_start = before;
        while number_start > 0 && pdf[number_start - 1].is_ascii_digit() {
            number_start -= 1;
        }
        if number_start > 0 && !is_delimiter_or_space(pdf[number_start - 1]) {
            continue;
        }
        match parse_two_numbers(pdf, number_start) {
            Some((n, g, end)) if n == number && g == generation && skip_space(pdf, end) == at => {
                let body_start = at + 3;
                let body_end = find_all(&pdf[body_start..], b"endobj")
                    .next()
                    .map_or(pdf.len(), |e| body_start + e);
                bodies.push((body_start, body_end));
            }
            _ => {}
        }
    }
    bodies
}

/// Replaces every string (literal or hexadecimal) in `pdf[start..end]` by `()` and spaces.
fn blank_strings(pdf: &mut [u8], start: usize, end: usize) -> Result<(), PdfError> {
    let mut at = start;
    while at < end {
        match pdf[at] {
            b'(' => {
                let close = literal_string_end(pdf, at, end)?;
                blank_range(pdf, at, close + 1);
                at = close + 1;
            }
            b'<' if pdf.get(at + 1) == Some(&b'<') => at += 2,
            b'<' => {
                let close = pdf[at..end]
                    .iter()
                    .position(|&b| b == b'>')
                    .map(|p| at + p)
                    .ok_or(PdfError::Malformed {
                        offset: at,
                        reason: "a hexadecimal string never ends",
                    })?;
                blank_range(pdf, at, close + 1);
                at = close + 1;
            }
            b'%' => {
                // A comment runs to the end of the line; it may hold anything, so it goes too.
                let eol = pdf[at..end]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(end, |p| at + p);
                pdf[at + 1..eol].fill(b' ');
                at = eol;
            }
            b's' if pdf[at..end].starts_with(b"stream") => break,
            _ => at += 1,
        }
    }
    Ok(())
}

/// The offset of the `)` that closes the literal string opened at `open`.
fn literal_string_end(pdf: &[u8], open: usize, end: usize) -> Result<usize, PdfError> {
    let mut depth = 0usize;
    let mut at = open;
    while at < end {
        match pdf[at] {
            b'\\' => at += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(at);
                }
            }
            _ => {}
        }
        at += 1;
    }
    Err(PdfError::Malformed {
        offset: open,
        reason: "a string never ends",
    })
}

/// `()` then spaces over `pdf[from..to]` (at least two bytes: a string is at least `()` or `<>`).
fn blank_range(pdf: &mut [u8], from: usize, to: usize) {
    pdf[from..to].fill(b' ');
    pdf[from] = b'(';
    pdf[from + 1] = b')';
}

/// Whether `/Type` (and optional space) comes right before the name at `at`.
fn preceded_by_type(pdf: &[u8], at: usize) -> bool {
    let mut before = at;
    while before > 0 && pdf[before - 1].is_ascii_whitespace() {
        before -= 1;
    }
    before >= 5 && &pdf[before - 5..before] == b"/Type"
}

/// Blanks the stream of the metadata object whose `/Type /Metadata` is at `at`.
fn blank_xmp_stream(pdf: &mut [u8], at: usize) -> Result<(), PdfError> {
    let unsupported = PdfError::Unsupported("PDF XMP metadata that is compressed: not scrubbed");
    let stream = find_all(&pdf[at..], b"stream")
        .next()
        .map(|p| at + p)
        .ok_or(PdfError::Malformed {
            offset: at,
            reason: "a metadata dictionary without its stream",
        })?;
    let dictionary = &pdf[at..stream];
    if contains(dictionary, b"endobj") {
        // A metadata dictionary that is not a stream: nothing to blank here.
        return Ok(());
    }
    if contains(dictionary, b"/Filter") {
        return Err(unsupported);
    }
    let mut data = stream + 6;
    if pdf.get(data) == Some(&b'\r') {
        data += 1;
    }
    if pdf.get(data) == Some(&b'\n') {
        data += 1;
    }
    let data_end = find_all(&pdf[data..], b"endstream")
        .next()
        .map(|p| data + p)
        .ok_or(PdfError::Malformed {
            offset: stream,
            reason: "a metadata stream never ends",
        })?;
    // The line end before `endstream` is not part of the data; spaces there do no harm either way.
    pdf[data..data_end].fill(b' ');
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blanks_info_strings_and_xmp_keeping_the_length() {
        let original = crate::fixtures::pdf_with_author();
        let mut pdf = original.clone();
        let removed = blank_metadata(&mut pdf).unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_eq!(pdf.len(), original.len());
        for marker in crate::fixtures::PDF_MARKERS {
            assert!(
                !pdf.windows(marker.len()).any(|w| w == *marker),
                "{marker:?}"
            );
        }
        assert!(
            pdf.windows(10).any(|w| w == b"Hello page"),
            "the page text is kept"
        );
    }

    #[test]
    fn encrypted_and_compressed_are_unsupported_not_passed() {
        let mut encrypted = b"%PDF-1.4\ntrailer << /Encrypt 5 0 R /Info 1 0 R >>".to_vec();
        assert!(matches!(
            blank_metadata(&mut encrypted),
            Err(PdfError::Unsupported(_))
        ));
        let mut packed = b"%PDF-1.5\n9 0 obj << /Type /ObjStm >> stream\nxx\nendstream endobj\ntrailer << /Info 1 0 R >>"
            .to_vec();
        assert!(matches!(
            blank_metadata(&mut packed),
            Err(PdfError::Unsupported(_))
        ));
        let mut missing = b"%PDF-1.4\ntrailer << /Info 1 0 R >>".to_vec();
        assert!(matches!(
            blank_metadata(&mut missing),
            Err(PdfError::Malformed { .. })
        ));
        let mut open =
            b"%PDF-1.4\n1 0 obj << /Author (Anna >> endobj trailer << /Info 1 0 R >>".to_vec();
        assert!(matches!(
            blank_metadata(&mut open),
            Err(PdfError::Malformed { .. })
        ));
    }
}
