package sample

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		// Firing.
		{"flag=value", []string{"db", "--password=hunter2"}, "db --password=<redacted>"},
		{"flag value", []string{"db", "--password", "hunter2", "--port", "5432"}, "db --password <redacted> --port 5432"},
		{"single dash flag=value", []string{"app", "-token=abc"}, "app -token=<redacted>"},
		{"single dash flag value", []string{"app", "-token", "abc"}, "app -token <redacted>"},
		{"env style upper", []string{"env", "PASSWORD=x", "run"}, "env PASSWORD=<redacted> run"},
		{"env style suffix", []string{"env", "PGPASSWORD=x", "psql"}, "env PGPASSWORD=<redacted> psql"},
		{"api_key", []string{"tool", "api_key=x"}, "tool api_key=<redacted>"},
		{"db-token", []string{"tool", "--db-token=x"}, "tool --db-token=<redacted>"},
		{"client_secret", []string{"tool", "client_secret=x"}, "tool client_secret=<redacted>"},
		{"credential value", []string{"tool", "--credential", "x"}, "tool --credential <redacted>"},
		{"credentials", []string{"tool", "--credentials=x"}, "tool --credentials=<redacted>"},
		{"auth value", []string{"mongo", "--auth", "admin:hunter2"}, "mongo --auth <redacted>"},
		{"passwd", []string{"x", "--passwd=y"}, "x --passwd=<redacted>"},
		{"pwd part", []string{"x", "MYSQL_PWD=y"}, "x MYSQL_PWD=<redacted>"},
		{"pass", []string{"x", "--pass", "y"}, "x --pass <redacted>"},
		{"openssl passin", []string{"openssl", "rsa", "-passin", "pass:hunter2"}, "openssl rsa -passin <redacted>"},
		{"key part", []string{"x", "--api-key", "y"}, "x --api-key <redacted>"},
		{"key alone", []string{"x", "--key=y"}, "x --key=<redacted>"},
		{"camel case", []string{"x", "--apiKey=y"}, "x --apiKey=<redacted>"},
		{"acronym camel case", []string{"x", "--APIKey=y"}, "x --APIKey=<redacted>"},
		{"java property", []string{"java", "-Djavax.net.ssl.keyStorePassword=changeit", "-jar", "a.jar"}, "java -Djavax.net.ssl.keyStorePassword=<redacted> -jar a.jar"},
		{"aws secret", []string{"env", "AWS_SECRET_ACCESS_KEY=abc", "aws"}, "env AWS_SECRET_ACCESS_KEY=<redacted> aws"},
		{"secretkey part", []string{"minio", "MINIO_SECRETKEY=abc"}, "minio MINIO_SECRETKEY=<redacted>"},
		{"token suffix", []string{"x", "--authToken", "abc"}, "x --authToken <redacted>"},
		{"github token", []string{"env", "GITHUB_TOKEN=ghp_x"}, "env GITHUB_TOKEN=<redacted>"},
		{"passphrase", []string{"x", "--passphrase=a"}, "x --passphrase=<redacted>"},
		{"case insensitive", []string{"x", "--PassWord=a"}, "x --PassWord=<redacted>"},
		{"value with equals", []string{"x", "--token=a=b=c"}, "x --token=<redacted>"},
		{"url user:pass", []string{"psql", "postgres://bob:hunter2@db:5432/app"}, "psql postgres://bob:<redacted>@db:5432/app"},
		{"url empty user", []string{"redis-cli", "-u", "redis://:hunter2@cache:6379"}, "redis-cli -u redis://:<redacted>@cache:6379"},
		{"url in flag value", []string{"app", "--dsn=mysql://root:pw@tcp(db)/x"}, "app --dsn=mysql://root:<redacted>@tcp(db)/x"},
		{"url password with @", []string{"x", "https://u:p@ss@host/path"}, "x https://u:<redacted>@host/path"},
		{"url query", []string{"curl", "https://api/x?user=bob&access_token=abc&page=2#top"}, "curl https://api/x?user=bob&access_token=<redacted>&page=2#top"},
		{"url query and user", []string{"x", "https://u:p@h/?sig=1&token=t"}, "x https://u:<redacted>@h/?sig=1&token=<redacted>"},
		{"header", []string{"curl", "-H", "Authorization: Bearer abc.def", "https://api"}, "curl -H Authorization: <redacted> https://api"},
		{"api key header", []string{"curl", "-H", "X-Api-Key:  abc", "https://api"}, "curl -H X-Api-Key:  <redacted> https://api"},
		{"header in flag", []string{"curl", "--header=Authorization:", "x"}, "curl --header=Authorization: x"},
		{"sh -c script", []string{"sh", "-c", "PGPASSWORD=pw psql --password x -c 'select 1'"}, "sh -c PGPASSWORD=<redacted> psql --password <redacted> -c 'select 1'"},
		{"rewritten cmdline", []string{"worker: --token abc idle"}, "worker: --token <redacted> idle"},
		{"pending across args in one", []string{"run --password", "x y"}, "run --password <redacted> y"},
		{"quoted value", []string{"sh", "-c", "mysql --password='my secret pw' db"}, "sh -c mysql --password=<redacted> db"},
		{"quoted next word", []string{"sh", "-c", `login --token "a b c" --v`}, "sh -c login --token <redacted> --v"},
		{"quoted closed in word", []string{"sh", "-c", "x --password='pw' db"}, "sh -c x --password=<redacted> db"},
		{"unclosed quote", []string{"sh", "-c", "x --password='pw db"}, "sh -c x --password=<redacted> db"},
		{"next word is dashes-less flag value", []string{"x", "--password", "-x"}, "x --password <redacted>"},
		{"tab separated", []string{"a\t--token\tb"}, "a\t--token\t<redacted>"},

		// Not firing.
		{"keyboard", []string{"x", "--keyboard", "us"}, "x --keyboard us"},
		{"monkey", []string{"x", "--monkey=1"}, "x --monkey=1"},
		{"author", []string{"git", "commit", "--author", "Bob"}, "git commit --author Bob"},
		{"keyfile single part", []string{"x", "--keyfile=/etc/k"}, "x --keyfile=/etc/k"},
		{"password file", []string{"x", "--password-file", "/run/secrets/pw", "y"}, "x --password-file /run/secrets/pw y"},
		{"key file", []string{"nginx", "--ssl-key-file=/etc/k.pem"}, "nginx --ssl-key-file=/etc/k.pem"},
		{"key id", []string{"env", "AWS_ACCESS_KEY_ID=AKIA"}, "env AWS_ACCESS_KEY_ID=AKIA"},
		{"auth method", []string{"x", "--auth-method", "md5"}, "x --auth-method md5"},
		{"password stdin", []string{"docker", "login", "--password-stdin", "registry"}, "docker login --password-stdin registry"},
		{"no auth", []string{"x", "--no-auth", "serve"}, "x --no-auth serve"},
		{"enable auth", []string{"x", "--enable-auth", "serve"}, "x --enable-auth serve"},
		{"auth required", []string{"x", "--auth-required", "serve"}, "x --auth-required serve"},
		{"next is a long flag", []string{"mysql", "--password", "--verbose", "db"}, "mysql --password --verbose db"},
		{"short p", []string{"mysql", "-p", "hunter2"}, "mysql -p hunter2"},
		{"short p glued", []string{"mysql", "-phunter2"}, "mysql -phunter2"},
		{"tokenizer", []string{"x", "--tokenizer", "bert"}, "x --tokenizer bert"},
		{"max tokens", []string{"x", "--max-tokens", "4096"}, "x --max-tokens 4096"},
		{"empty value", []string{"x", "--password="}, "x --password="},
		{"positional word", []string{"vault", "token", "lookup"}, "vault token lookup"},
		{"url user only", []string{"git", "clone", "https://ghp_x@github.com/o/r"}, "git clone https://ghp_x@github.com/o/r"},
		{"url without credentials", []string{"curl", "https://example.com:8443/a@b?q=1"}, "curl https://example.com:8443/a@b?q=1"},
		{"colon word", []string{"echo", "note:", "hello"}, "echo note: hello"},
		{"not an identifier", []string{"x", "a+token=b"}, "x a+token=b"},
		{"kernel thread", nil, ""},
		{"empty args", []string{"", ""}, " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.args); got != tt.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestRedactCut(t *testing.T) {
	long := strings.Repeat("a", 600)
	got := Redact([]string{long})
	if len(got) > MaxCmdline || !strings.HasSuffix(got, "…") || got != strings.Repeat("a", MaxCmdline-len("…"))+"…" {
		t.Errorf("Redact(600 × a) = %d bytes %q…, want %d bytes ending in …", len(got), got[:10], MaxCmdline)
	}

	exact := strings.Repeat("b", MaxCmdline)
	if got := Redact([]string{exact}); got != exact {
		t.Errorf("a command line of exactly MaxCmdline bytes was cut: %d bytes", len(got))
	}

	// Multi-byte runes are never split.
	for pad := range 4 {
		args := []string{strings.Repeat("x", pad) + strings.Repeat("é€😀", 100)}
		got := Redact(args)
		if len(got) > MaxCmdline || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
			t.Errorf("pad %d: %d bytes, valid UTF-8 %v, ends with … %v", pad, len(got), utf8.ValidString(got), strings.HasSuffix(got, "…"))
		}
		if len(got) < MaxCmdline-3 {
			t.Errorf("pad %d: cut too short: %d bytes", pad, len(got))
		}
	}

	// Redaction happens before the cut: a secret near the limit is gone.
	args := []string{strings.Repeat("c", 500), "--password=" + strings.Repeat("s", 100)}
	if got := Redact(args); strings.Contains(got, "sss") {
		t.Errorf("secret survived the cut: %q", got[490:])
	}

	// Many arguments stop early but still give a full-length result.
	many := make([]string, 10000)
	for i := range many {
		many[i] = "arg"
	}
	if got := Redact(many); len(got) != MaxCmdline {
		t.Errorf("10000 args: %d bytes, want %d", len(got), MaxCmdline)
	}
}
