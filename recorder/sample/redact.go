package sample

import (
	"strings"
	"unicode/utf8"

	"github.com/preflight-rec/preflight/recorder/secret"
)

// MaxCmdline is the longest command line Redact returns, in bytes: the
// length kept for the service's own processes.
const MaxCmdline = 512

// MaxTopCmdline is the longest command line kept in the host's top-CPU and
// top-memory lists, which repeat in every sample: it keeps a default capture
// (20 samples, top 5) within 64 KiB whatever the host runs.
const MaxTopCmdline = 96

const (
	redacted = "<redacted>"
	ellipsis = "…"
)

// Redact returns a command line with secret-looking values replaced by "<redacted>" and cut to MaxCmdline bytes.
//
// The arguments are joined by spaces. Each argument is also scanned word by
// word (split on blanks), so a command line rewritten into one string and the
// script of "sh -c" are covered too. Which keys are secret-looking is
// [secret.IsKey]'s rule (password, token, secret, key, auth, credential,
// signature, …; not --password-file, --key-id or --no-auth). Then:
//
//   - --password=x, -token=x, PASSWORD=x, api_key=x: the value after '=' is
//     redacted;
//   - --password x, --credential x, --auth x: the next word is redacted,
//     unless it starts with "--" (another flag); --auth is included because
//     its value is usually user:password;
//   - "Authorization: Bearer x", "X-Api-Key: x": everything after the header
//     name, to the end of the argument, is redacted;
//   - a quoted value (--password='a b') is redacted to its closing quote;
//   - URLs: scheme://user:pass@host becomes scheme://user:<redacted>@host,
//     and secret-looking query parameters (?access_token=x) are redacted
//     ([secret.URL]).
//
// Short flags (-p x, -pSECRET) and a URL's user without a password
// (https://TOKEN@host) are left alone: they are too ambiguous.
//
// The result is cut at a rune boundary to at most MaxCmdline bytes, ending
// with "…" when cut.
func Redact(args []string) string {
	var b strings.Builder
	var r redactor
	for i, arg := range args {
		if b.Len() > MaxCmdline {
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		r.arg(&b, arg)
	}
	return cut(b.String(), MaxCmdline)
}

// cut cuts s at a rune boundary to at most max bytes, "…" included.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

// redactor carries state from one word to the next, across arguments.
type redactor struct {
	pending bool // the previous word was a secret-looking flag without a value
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// arg writes one argument to b, redacted.
func (r *redactor) arg(b *strings.Builder, arg string) {
	i := 0
	for i < len(arg) {
		j := i
		for j < len(arg) && isBlank(arg[j]) {
			j++
		}
		b.WriteString(arg[i:j])
		if j == len(arg) {
			return
		}
		k := j
		for k < len(arg) && !isBlank(arg[k]) {
			k++
		}
		out, quote, rest := r.word(arg[j:k])
		b.WriteString(out)
		if rest {
			tail := arg[k:]
			value := strings.TrimLeft(tail, " \t\n")
			if value != "" {
				b.WriteString(tail[:len(tail)-len(value)])
				b.WriteString(redacted)
			}
			return
		}
		if quote != 0 {
			if end := strings.IndexByte(arg[k:], quote); end >= 0 {
				k += end + 1
			}
		}
		i = k
	}
}

// word returns w redacted. quote is the quote character that opens a
// redacted value and is not closed within w; rest reports that w is a
// secret header name whose value is the rest of the argument.
func (r *redactor) word(w string) (out string, quote byte, rest bool) {
	if r.pending {
		r.pending = false
		if !strings.HasPrefix(w, "--") {
			return redacted, openQuote(w), false
		}
	}
	if name, ok := strings.CutSuffix(w, ":"); ok {
		if i := strings.LastIndexByte(name, '='); i >= 0 {
			name = name[i+1:] // --header=Authorization:
		}
		if secret.IsKey(name) {
			return w, 0, true
		}
	}
	body := w
	flag := strings.HasPrefix(body, "-")
	if flag {
		body = strings.TrimPrefix(body[1:], "-")
	}
	key, value, hasEq := strings.Cut(body, "=")
	if hasEq && (flag || isIdent(key)) {
		if value != "" && secret.IsKey(key) {
			return w[:len(w)-len(value)] + redacted, openQuote(value), false
		}
		return w[:len(w)-len(value)] + secret.URL(value, redacted), 0, false
	}
	if flag && !hasEq && secret.IsKey(key) {
		r.pending = true
		return w, 0, false
	}
	return secret.URL(w, redacted), 0, false
}

// openQuote returns the quote that opens v and is not closed in v, or 0.
func openQuote(v string) byte {
	if v == "" || (v[0] != '\'' && v[0] != '"') {
		return 0
	}
	if strings.IndexByte(v[1:], v[0]) >= 0 {
		return 0
	}
	return v[0]
}

// isIdent reports whether s can be an environment-style key (KEY=value).
func isIdent(s string) bool {
	if s == "" || !(isLetter(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || isDigit(c) || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return isUpper(c) || isLower(c) }
