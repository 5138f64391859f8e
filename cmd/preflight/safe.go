package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// safe makes a string from a capture, a state file or a file name fit for a
// terminal: nothing in it can be a control sequence. C0 controls (tab and
// newline included: every field is one line), DEL, the C1 controls, bytes
// that are not UTF-8, and invisible format characters (bidirectional
// overrides, zero-width characters) are shown visibly as Go escapes:
// ESC as \x1b, newline as \n, U+009B as \u009b, U+202E as \u202e. Printable
// text passes unchanged. Only our own colour codes (out.paint), added after
// safe, reach a terminal as escape sequences.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0xa0 && r >= 0x80 || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			// Plain ASCII is the common case; anything else is decoded.
			for _, r := range s[i:] {
				if r == utf8.RuneError || r < 0x20 || r >= 0x7f && r < 0xa0 || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
					return true
				}
			}
			return false
		}
	}
	return false
}
