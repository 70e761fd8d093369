//! Splitting long replies for platforms with a message-length limit.

/// Splits `text` into pieces of at most `limit` UTF-16 units (how Telegram and WhatsApp
/// count), preferring to cut after a sentence, then at a line break or a space. A single
/// character wider than the limit (an emoji against a limit of one) is a piece of its own.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.encode_utf16().count() > limit {
        // The longest prefix within the limit, on a char boundary.
        let mut units = 0;
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            units += c.len_utf16();
            if units > limit {
                break;
            }
            end = i + c.len_utf8();
        }
        // Always move on: a first character wider than the limit goes out alone (found by
        // fuzzing: the loop used to push empty pieces for ever).
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let window = &rest[..end];
        let cut = [". ", "! ", "? ", ".\n", "!\n", "?\n"]
            .iter()
            .filter_map(|p| window.rfind(p).map(|i| i + 1))
            .max()
            .or_else(|| window.rfind('\n'))
            .or_else(|| window.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(end);
        out.push(rest[..cut].trim().to_owned());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_message;

    #[test]
    fn a_character_wider_than_the_limit_still_moves_on() {
        assert_eq!(split_message("😀😀", 1), ["😀", "😀"]);
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_message("Hello there.", 4096), ["Hello there."]);
    }

    #[test]
    fn cuts_after_sentences_within_the_limit() {
        let text = format!("{} {}", "a".repeat(30) + ".", "b".repeat(30) + ".");
        assert_eq!(
            split_message(&text, 40),
            ["a".repeat(30) + ".", "b".repeat(30) + "."]
        );
        let long = "Sentence number one. ".repeat(400);
        let parts = split_message(&long, 4096);
        assert!(parts.len() > 1);
        assert!(
            parts
                .iter()
                .all(|p| p.encode_utf16().count() <= 4096 && p.ends_with('.'))
        );
        assert_eq!(parts.join(" "), long.trim());
    }

    #[test]
    fn hard_cuts_when_there_is_no_break_and_counts_utf16() {
        assert_eq!(split_message(&"x".repeat(10), 4), ["xxxx", "xxxx", "xx"]);
        // Each emoji is two UTF-16 units.
        assert_eq!(split_message("😀😀😀", 4), ["😀😀", "😀"]);
    }
}
