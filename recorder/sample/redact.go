package sample

import (
	"strings"
	"unicode/utf8"
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
// script of "sh -c" are covered too. A key is secret-looking when one of its
// parts (split on - _ . and camelCase, compared case-insensitively) is
// password, passwd, passphrase, secret, token, credential(s), apikey,
// secretkey, accesskey, privatekey or signature, or ends with one of them
// (PGPASSWORD, authToken), or is exactly key, pwd, pw, pass, passin,
// passout, auth or authorization. A key of several parts is not
// secret-looking when its first part makes it a switch (no, enable,
// disable, skip, require, allow, use, without: --no-auth) or its last part
// names something beside the secret or a switch (file, path, dir, url,
// host, port, user, name, id, type, mode, method, timeout, ttl, length,
// size, env, command, stdin, required, enabled, disabled: --password-file,
// --key-id, --auth-method, --password-stdin, --auth-required). Then:
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
//     and secret-looking query parameters (?access_token=x) are redacted.
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
		if isSecretKey(name) {
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
		if value != "" && isSecretKey(key) {
			return w[:len(w)-len(value)] + redacted, openQuote(value), false
		}
		return w[:len(w)-len(value)] + redactURL(value), 0, false
	}
	if flag && !hasEq && isSecretKey(key) {
		r.pending = true
		return w, 0, false
	}
	return redactURL(w), 0, false
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

// redactURL redacts the password of a URL's user info and the values of its
// secret-looking query parameters. Anything else is returned as is.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	start := i + len("://")
	end := len(s)
	if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
		end = start + j
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		if c := strings.IndexByte(s[start:start+at], ':'); c >= 0 && c+1 < at {
			s = s[:start+c+1] + redacted + s[start+at:]
		}
	}
	q := strings.IndexByte(s[start:], '?')
	if q < 0 {
		return s
	}
	q += start + 1
	qend := len(s)
	if h := strings.IndexByte(s[q:], '#'); h >= 0 {
		qend = q + h
	}
	params := strings.Split(s[q:qend], "&")
	changed := false
	for n, p := range params {
		if k, v, ok := strings.Cut(p, "="); ok && v != "" && isSecretKey(k) {
			params[n] = k + "=" + redacted
			changed = true
		}
	}
	if !changed {
		return s
	}
	return s[:q] + strings.Join(params, "&") + s[qend:]
}

// Key parts that make a key secret-looking: as a part or a part's suffix
// (strong), or only as a whole part (weak).
var (
	strongParts = []string{
		"password", "passwd", "passphrase", "secret", "token", "credential", "credentials",
		"apikey", "secretkey", "accesskey", "privatekey", "signature",
	}
	weakParts = map[string]bool{
		"key": true, "pwd": true, "pw": true, "pass": true, "passin": true, "passout": true,
		"auth": true, "authorization": true,
	}
	// A first part that makes the key a switch: --no-auth, --enable-auth.
	notSecretFirst = map[string]bool{
		"no": true, "enable": true, "disable": true, "skip": true, "require": true,
		"allow": true, "use": true, "without": true,
	}
	// A last part that names something beside the secret itself, or makes
	// the key a switch.
	notSecretLast = map[string]bool{
		"file": true, "files": true, "path": true, "dir": true, "directory": true,
		"url": true, "uri": true, "endpoint": true, "host": true, "port": true,
		"user": true, "username": true, "name": true, "id": true,
		"type": true, "mode": true, "method": true, "timeout": true, "ttl": true,
		"length": true, "size": true, "env": true, "command": true, "cmd": true, "stdin": true,
		"required": true, "enabled": true, "disabled": true,
	}
)

// isSecretKey reports whether a key (a flag name, an environment-style
// name, a header name, a query parameter) looks like it holds a secret.
func isSecretKey(key string) bool {
	parts := keyParts(key)
	if len(parts) == 0 {
		return false
	}
	if len(parts) > 1 && (notSecretFirst[parts[0]] || notSecretLast[parts[len(parts)-1]]) {
		return false
	}
	for _, p := range parts {
		if weakParts[p] {
			return true
		}
		for _, s := range strongParts {
			if strings.HasSuffix(p, s) {
				return true
			}
		}
	}
	return false
}

// keyParts splits a key on - _ . and camelCase boundaries, lower-cased:
// "keyStorePassword" → key store password, "APIKey" → api key.
func keyParts(key string) []string {
	var parts []string
	start := 0
	flush := func(end int) {
		if end > start {
			parts = append(parts, strings.ToLower(key[start:end]))
		}
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			flush(i)
			start = i + 1
		case isUpper(c) && i > start:
			prev := key[i-1]
			if isLower(prev) || isDigit(prev) || (isUpper(prev) && i+1 < len(key) && isLower(key[i+1])) {
				flush(i)
				start = i
			}
		}
	}
	flush(len(key))
	return parts
}

func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return isUpper(c) || isLower(c) }
