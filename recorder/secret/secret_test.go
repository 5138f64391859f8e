package secret

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		// Masked.
		{"http://user:pw@host/", "http://user:xxxxx@host/"},
		{"https://user:p@ss:w@rd@host:1/x@y", "https://user:xxxxx@host:1/x@y"},
		{"https://u:p%40ss@h.internal:8443/health", "https://u:xxxxx@h.internal:8443/health"},
		{"http://h/health?token=s3cr3t", "http://h/health?token=xxxxx"},
		{"http://h/health?access_token=a&page=2", "http://h/health?access_token=xxxxx&page=2"},
		{"http://h/?api_key=a&apiKey=b&key=c&x-api-key=d", "http://h/?api_key=xxxxx&apiKey=xxxxx&key=xxxxx&x-api-key=xxxxx"},
		{"http://h/?password=a&secret=b&auth=c&credential=d", "http://h/?password=xxxxx&secret=xxxxx&auth=xxxxx&credential=xxxxx"},
		{"https://b.s3/o?X-Amz-Credential=AK&X-Amz-Signature=ab&X-Amz-Security-Token=t&X-Amz-Expires=60",
			"https://b.s3/o?X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx&X-Amz-Security-Token=xxxxx&X-Amz-Expires=60"},
		{"http://h/?TOKEN=a", "http://h/?TOKEN=xxxxx"},
		{"http://h/?access%5Ftoken=a", "http://h/?access%5Ftoken=xxxxx"},
		{"http://h/?token=a&token=b", "http://h/?token=xxxxx&token=xxxxx"},
		{"http://u:p@h/?token=a#frag", "http://u:xxxxx@h/?token=xxxxx#frag"},
		// Kept.
		{"http://127.0.0.1/health", "http://127.0.0.1/health"},
		{"http://user@host/", "http://user@host/"},
		{"http://host/path?u=a:b@c", "http://host/path?u=a:b@c"},
		{"http://h/?page=2&verbose&token=", "http://h/?page=2&verbose&token="},
		{"http://h/?token_type=bearer&key_id=1&no-auth=1", "http://h/?token_type=bearer&key_id=1&no-auth=1"},
		{"http://h/?monkey=1&keyboard=us&author=bob", "http://h/?monkey=1&keyboard=us&author=bob"},
		{"tcp://127.0.0.1:5432", "tcp://127.0.0.1:5432"},
		{"not a url?token=x", "not a url?token=x"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := URL(tt.in, "xxxxx"); got != tt.want {
			t.Errorf("URL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		// Masking a masked URL changes nothing.
		if got := URL(tt.want, "xxxxx"); got != tt.want {
			t.Errorf("URL(%q) is not idempotent: %q", tt.want, got)
		}
	}
}

func TestURLsIn(t *testing.T) {
	for in, want := range map[string]string{
		`failed to parse Location header "http://h:abc/?token=s3": parse "http://h:abc/?token=s3": invalid port`: `failed to parse Location header "http://h:abc/?token=xxxxx": parse "http://h:abc/?token=xxxxx": invalid port`,
		"get https://u:pw@h/x?key=1 and ftp://h/?page=2":                                                         "get https://u:xxxxx@h/x?key=xxxxx and ftp://h/?page=2",
		"connection refused":   "connection refused",
		"a :// b":              "a :// b",
		"'http://h/?auth=a'":   "'http://h/?auth=xxxxx'",
		"<http://h/?secret=a>": "<http://h/?secret=xxxxx>",
		"":                     "",
	} {
		if got := URLsIn(in, "xxxxx"); got != want {
			t.Errorf("URLsIn(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestIsKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "PGPASSWORD": true, "authToken": true, "api_key": true, "X-Api-Key": true,
		"key": true, "auth": true, "Authorization": true, "client_secret": true, "signature": true,
		"credentials": true, "X-Amz-Signature": true,
		"password-file": false, "key-id": false, "no-auth": false, "keyboard": false, "author": false,
		"tokenizer": false, "page": false, "": false,
	} {
		if got := IsKey(key); got != want {
			t.Errorf("IsKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestKeyParts(t *testing.T) {
	tests := map[string]string{
		"keyStorePassword": "key store password",
		"APIKey":           "api key",
		"api_key":          "api key",
		"db-token":         "db token",
		"a.b.c":            "a b c",
		"PGPASSWORD":       "pgpassword",
		"OAuth2Token":      "o auth2 token",
		"--x":              "x",
		"":                 "",
	}
	for in, want := range tests {
		if got := strings.Join(keyParts(in), " "); got != want {
			t.Errorf("keyParts(%q) = %q, want %q", in, got, want)
		}
	}
}
