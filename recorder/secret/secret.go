// Package secret holds preflight's one rule for what looks like a secret:
// [IsKey] says whether a name (a flag, an environment-style key, a header,
// a query parameter) looks like it holds one, and [URL] masks the secrets
// of a URL. Command-line redaction (package sample) and the health URL
// (package health, wherever it is shown or stored) both use them, so the
// two never disagree.
package secret

import (
	"net/url"
	"strings"
)

// URL returns s with the password of its user info (scheme://user:pass@host)
// and the values of its secret-looking query parameters (?access_token=x,
// by [IsKey]) replaced by mask. Everything else, harmless parameters
// included, is kept byte for byte. s need not parse as a URL: anything
// without "://" is returned as is, so URL can be applied to any word.
// A user without a password (https://TOKEN@host) and a secret in the path
// are not recognized.
func URL(s, mask string) string {
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
			s = s[:start+c+1] + mask + s[start+at:]
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
		if k, v, ok := strings.Cut(p, "="); ok && v != "" && isQueryKey(k) {
			params[n] = k + "=" + mask
			changed = true
		}
	}
	if !changed {
		return s
	}
	return s[:q] + strings.Join(params, "&") + s[qend:]
}

// URLsIn returns text (an error message, a log line) with [URL] applied to
// every URL in it: a word containing "://", ending at a blank or a quote.
func URLsIn(text, mask string) string {
	var b strings.Builder
	rest := text
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		start := i
		for start > 0 && isSchemeByte(rest[start-1]) {
			start--
		}
		end := i + len("://")
		for end < len(rest) && !strings.ContainsRune(" \t\n\"'`<>", rune(rest[end])) {
			end++
		}
		b.WriteString(rest[:start])
		b.WriteString(URL(rest[start:end], mask))
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return text
	}
	b.WriteString(rest)
	return b.String()
}

func isSchemeByte(c byte) bool {
	return isUpper(c) || isLower(c) || isDigit(c) || c == '+' || c == '-' || c == '.'
}

// isQueryKey is IsKey for a query parameter's name, which may be
// percent-encoded (access%5Ftoken).
func isQueryKey(k string) bool {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	return IsKey(k)
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

// IsKey reports whether a key (a flag name, an environment-style name, a
// header name, a query parameter) looks like it holds a secret.
//
// A key is secret-looking when one of its parts (split on - _ . and
// camelCase, compared case-insensitively) is password, passwd, passphrase,
// secret, token, credential(s), apikey, secretkey, accesskey, privatekey or
// signature, or ends with one of them (PGPASSWORD, authToken,
// X-Amz-Signature), or is exactly key, pwd, pw, pass, passin, passout, auth
// or authorization. A key of several parts is not secret-looking when its
// first part makes it a switch (no, enable, disable, skip, require, allow,
// use, without: --no-auth) or its last part names something beside the
// secret or a switch (file, path, dir, url, host, port, user, name, id,
// type, mode, method, timeout, ttl, length, size, env, command, stdin,
// required, enabled, disabled: --password-file, --key-id, --auth-method,
// --password-stdin, --auth-required).
func IsKey(key string) bool {
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

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
