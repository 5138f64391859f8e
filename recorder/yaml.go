package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/preflight-rec/preflight/recorder/health"
)

// File is a YAML configuration file: the design sketch's shape, with a
// top-level capture_dir and defaults for every service.
//
//	capture_dir: /var/lib/preflight   # optional
//	defaults:                         # optional: any service key but name
//	  interval_seconds: 10
//	services:
//	  - name: dead-drop
//	    health_url: https://example.internal/drop/health
//	    interval_seconds: 30
//
// Service keys are the environment variables' names, lower-cased, without
// PREFLIGHT_ (the Config yaml tags), with "name" for PREFLIGHT_SERVICE.
//
// Precedence, highest first: the command line's --dir (applied by the
// caller), the service's own keys, the file's defaults and capture_dir, the
// PREFLIGHT_* environment (but for the per-service SERVICE, HEALTH_URL,
// UNIT and CGROUP, which the environment never sets in a file), the built-in
// defaults.

// ConfigsFromYAML reads the configuration file data (named file, for
// errors) over the environment environ and returns one validated Config per
// service. Every error is a *ConfigError naming the file, the line and the
// key.
func ConfigsFromYAML(file string, data []byte, environ []string) ([]Config, error) {
	base, err := envConfig(environ)
	if err != nil {
		return nil, err
	}
	base.Service, base.HealthURL, base.Unit, base.Cgroup = "", "", "", ""

	errAt := func(n *yaml.Node, key, format string, a ...any) error {
		name := fmt.Sprintf("%s:%d", file, n.Line)
		if key != "" {
			name += ": " + key
		}
		return &ConfigError{Name: name, Msg: fmt.Sprintf(format, a...)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, yamlError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{Name: file, Msg: "empty file: want a services list"}
	}
	// A second document (after ---) would be silently dropped: one file,
	// one document (an empty one, a trailing ---, drops nothing).
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, yamlError(file, err)
		}
		if !emptyDoc(&next) {
			return nil, errAt(&next, "", "another YAML document (---): want one, with every service under one services key")
		}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errAt(root, "", "want a mapping with a services list")
	}
	// A key given twice is a mistake whichever one was meant.
	var dup error
	walk(root, func(m *yaml.Node) {
		first := map[string]int{}
		for i := 0; i < len(m.Content) && dup == nil; i += 2 {
			k := m.Content[i]
			if line, ok := first[k.Value]; ok {
				dup = errAt(k, k.Value, "key given twice (first on line %d)", line)
			}
			first[k.Value] = k.Line
		}
	})
	if dup != nil {
		return nil, dup
	}
	var services *yaml.Node
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "capture_dir":
			if err := setField(&base, "capture_dir", v); err != nil {
				return nil, errAt(v, k.Value, "%v", err)
			}
		case "defaults":
			if v.Kind != yaml.MappingNode {
				return nil, errAt(v, k.Value, "want a mapping of service keys")
			}
			for j := 0; j < len(v.Content); j += 2 {
				dk, dv := v.Content[j], v.Content[j+1]
				if dk.Value == "name" || dk.Value == "health_url" {
					return nil, errAt(dk, "defaults."+dk.Value, "belongs to each service, not to defaults")
				}
				if err := setField(&base, dk.Value, dv); err != nil {
					return nil, errAt(dk, "defaults."+dk.Value, "%v", err)
				}
			}
		case "services":
			services = v
		default:
			return nil, errAt(k, k.Value, "unknown key (want capture_dir, defaults or services)")
		}
	}
	if services == nil || services.Kind != yaml.SequenceNode || len(services.Content) == 0 {
		n := root
		if services != nil {
			n = services
		}
		return nil, errAt(n, "services", "want a list of at least one service")
	}

	var out []Config
	seen := map[string]int{}
	for i, item := range services.Content {
		where := fmt.Sprintf("services[%d]", i)
		if item.Kind != yaml.MappingNode {
			return nil, errAt(item, where, "want a mapping with name and health_url")
		}
		cfg := base
		lines := map[string]*yaml.Node{}
		for j := 0; j < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			if err := setField(&cfg, k.Value, v); err != nil {
				return nil, errAt(k, k.Value, "%v", err)
			}
			lines[k.Value] = k
		}
		if cfg.Service != "" {
			where = cfg.Service
		}
		cfg = cfg.WithDefaults()
		if err := cfg.Validate(); err != nil {
			ce, ok := err.(*ConfigError)
			if !ok {
				return nil, err
			}
			key := yamlKey(ce.Field)
			n := item
			if k, ok := lines[key]; ok {
				n = k
			}
			return nil, errAt(n, key, "%s (service %s)", ce.Msg, where)
		}
		if prev, dup := seen[cfg.Service]; dup {
			return nil, errAt(lines["name"], "name", "service %q is listed twice (first on line %d)", cfg.Service, prev)
		}
		seen[cfg.Service] = lines["name"].Line
		out = append(out, cfg)
	}
	return out, nil
}

// yamlError names the file and, when the parser says it, the line of a
// syntax error: "f.yaml:2: found character that cannot start any token".
func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, err := strconv.Atoi(n); err == nil {
				return &ConfigError{Name: file + ":" + n, Msg: after}
			}
		}
	}
	return &ConfigError{Name: file, Msg: msg}
}

// emptyDoc reports whether a document holds nothing (a bare ---).
func emptyDoc(d *yaml.Node) bool {
	return len(d.Content) == 0 || len(d.Content) == 1 && d.Content[0].Kind == yaml.ScalarNode && d.Content[0].Tag == "!!null" && d.Content[0].Value == ""
}

// walk calls f for every mapping in the tree under n, n included.
func walk(n *yaml.Node, f func(*yaml.Node)) {
	if n.Kind == yaml.MappingNode {
		f(n)
	}
	for _, c := range n.Content {
		walk(c, f)
	}
}

// setField decodes the YAML value v into the Config field whose yaml tag is
// key.
func setField(c *Config, key string, v *yaml.Node) error {
	f, ok := fieldByYAML(key)
	if !ok {
		return fmt.Errorf("unknown key")
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value")
	}
	if v.Tag == "!!null" {
		return fmt.Errorf("no value (leave the key out for the default)")
	}
	fv := reflect.ValueOf(c).Elem().FieldByIndex(f.Index)
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(v.Value)
	case reflect.Int:
		n, err := strconv.Atoi(v.Value)
		if err != nil {
			return errors.New(numberError(v.Value, reflect.Int, err))
		}
		fv.SetInt(int64(n))
	case reflect.Float64:
		x, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return errors.New(numberError(v.Value, reflect.Float64, err))
		}
		if x == 0 && f.Name == "TimeoutSeconds" {
			return errors.New(errZeroTimeout) // 0 stands for the derived default
		}
		fv.SetFloat(x)
	}
	return nil
}

func fieldByYAML(key string) (reflect.StructField, bool) {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("yaml") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKey returns the YAML key of a Config field.
func yamlKey(field string) string {
	f, _ := reflect.TypeFor[Config]().FieldByName(field)
	return f.Tag.Get("yaml")
}

// MarshalConfigs prints configurations as a YAML file that would configure
// them: the effective configuration, for 'preflight start --check'. The
// health URLs' secrets are masked ([health.ShownURL]), as everywhere else
// preflight shows them.
func MarshalConfigs(cfgs []Config) ([]byte, error) {
	shown := make([]Config, len(cfgs))
	for i, c := range cfgs {
		c.HealthURL = health.ShownURL(c.HealthURL)
		shown[i] = c
	}
	cfgs = shown
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Services []Config `yaml:"services"`
	}{cfgs}); err != nil {
		return nil, fmt.Errorf("failed to encode configuration: %w", err)
	}
	return buf.Bytes(), nil
}
