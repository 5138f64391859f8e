package secret

import (
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/recorder/fuzztest"
)

// urlTarget: whatever precedes them in the path and the query, a URL's
// password and a token parameter are masked, a harmless parameter after
// them is kept, and masking twice changes nothing.
var urlTarget = fuzztest.Target{
	Name:  "FuzzURL",
	Seeds: []string{"", "a=b", "x/y?z", "token=1&", "%zz", "a=b&&c", "@:/?"},
	Check: func(t *testing.T, data []byte) {
		q := strings.NewReplacer("#", "", "~", "").Replace(string(data))
		in := "https://u:~pw~@h/p?" + q + "&token=~tk~&page=2"
		got := URL(in, "xxxxx")
		if strings.Contains(got, "~") {
			t.Fatalf("URL(%q) = %q keeps a secret", in, got)
		}
		if !strings.HasPrefix(got, "https://u:xxxxx@h/p?") || !strings.HasSuffix(got, "&token=xxxxx&page=2") {
			t.Fatalf("URL(%q) = %q, want the password and token masked, page kept", in, got)
		}
		if again := URL(got, "xxxxx"); again != got {
			t.Fatalf("URL(%q) = %q, masking again gives %q", in, got, again)
		}
		if s := string(data); URL(URL(s, "xxxxx"), "xxxxx") != URL(s, "xxxxx") {
			t.Fatalf("URL(%q) is not idempotent", s)
		}
	},
}

func FuzzURL(f *testing.F) { urlTarget.Fuzz(f) }

func TestURLMutations(t *testing.T) {
	fuzztest.Mutations(t, 5000, urlTarget)
}
