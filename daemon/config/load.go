package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is one configuration problem, positioned in its file.
type FieldError struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. inputs[2].variant
	Msg   string
	// Warning marks a problem of a valid config (Config.Warnings): careless,
	// not wrong. It prints as "file:line: field: warning: message".
	Warning bool
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	if e.Warning {
		b.WriteString(": warning")
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in file order.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// UnmarshalYAML parses durations such as "30s", "5m", "1h30m" and "90d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError, unlike other errors, lets the decoder go on, so
	// one bad duration does not hide the problems after it.
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 30s, 5m or 2d", n.Line)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in Go's notation.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

var dayRe = regexp.MustCompile(`^(\d+)d(.*)$`)

// ParseDuration is time.ParseDuration that also accepts a leading "Nd".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	orig, rest := s, s
	var days time.Duration
	if m := dayRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > maxDays {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
		days = time.Duration(n) * 24 * time.Hour
		rest = m[2]
		if rest == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. 30s, 5m, 2d)", orig)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", orig)
	}
	if days+v < days {
		return 0, fmt.Errorf("duration %q is too long", orig)
	}
	return days + v, nil
}

// maxDays is the most days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

// positions maps field paths to the line they are on.
type positions map[string]int

func (p positions) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			p[child] = k.Line
			p.walk(v, child)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			p[child] = c.Line
			p.walk(c, child)
		}
	}
}

// line returns the line of path, or of its nearest ancestor that exists.
func (p positions) line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// fieldAt returns the deepest path that starts on line l. Where several
// fields share the line (a flow mapping: {id: x, line: 5}), the line alone
// cannot say which one is meant, so it returns their closest common parent;
// given name, it first looks for the one field on the line so named.
func (p positions) fieldAt(l int, name string) string {
	var on []string
	for k, v := range p {
		if v == l {
			on = append(on, k)
		}
	}
	sort.Strings(on) // map order is random; errors must not be
	if name != "" {
		var named []string
		for _, k := range on {
			if k == name || strings.HasSuffix(k, "."+name) {
				named = append(named, k)
			}
		}
		if len(named) == 1 {
			return named[0]
		}
	}
	var leaves []string
	for _, k := range on {
		leaf := true
		for _, o := range on {
			if o != k && isWithin(o, k) {
				leaf = false
				break
			}
		}
		if leaf {
			leaves = append(leaves, k)
		}
	}
	if len(leaves) == 0 {
		return ""
	}
	for anc := leaves[0]; anc != ""; anc = parent(anc) {
		all := true
		for _, k := range leaves {
			all = all && isWithin(k, anc)
		}
		if all {
			return anc
		}
	}
	return ""
}

// isWithin reports whether path is anc or lies below it.
func isWithin(path, anc string) bool {
	return path == anc || strings.HasPrefix(path, anc+".") || strings.HasPrefix(path, anc+"[")
}

// parent returns the path one level up: inputs[2].line -> inputs[2] -> inputs.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeStrict decodes data into v, rejecting unknown fields, and returns
// the positions of every field for later errors. The file must hold one
// YAML document, a mapping with at least one of v's fields: anything else
// is refused without quoting it, for it may be a key or a password file
// given by mistake.
func decodeStrict(file string, data []byte, v any) (positions, Errors) {
	var root yaml.Node
	docs := yaml.NewDecoder(bytes.NewReader(data))
	if err := docs.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{yamlError(file, nil, err.Error())}
	}
	var second yaml.Node
	if err := docs.Decode(&second); err == nil {
		line := second.Line
		if len(second.Content) > 0 {
			line = second.Content[0].Line
		}
		return nil, Errors{{File: file, Line: line, Msg: "a config is one YAML document; a second one starts here"}}
	}
	if len(root.Content) == 1 {
		if m := root.Content[0]; m.Kind != yaml.MappingNode || !anyField(m, reflect.TypeOf(v)) {
			return nil, Errors{{File: file, Msg: "not a hallguard config (no YAML mapping of its fields): is this the right file?"}}
		}
	}
	pos := positions{}
	pos.walk(&root, "")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return pos, nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var es Errors
		for _, msg := range te.Errors {
			es = append(es, yamlError(file, pos, msg))
		}
		return pos, es
	}
	return pos, Errors{yamlError(file, pos, err.Error())}
}

// anyField reports whether mapping m has at least one key that is a YAML
// field of t (a pointer to a struct), or is empty.
func anyField(m *yaml.Node, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(m.Content) == 0 || t.Kind() != reflect.Struct {
		return true
	}
	known := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		known[name] = true
	}
	for i := 0; i < len(m.Content); i += 2 {
		if known[m.Content[i].Value] {
			return true
		}
	}
	return false
}

func yamlError(file string, pos positions, msg string) FieldError {
	msg = strings.TrimPrefix(msg, "yaml: ")
	m := yamlLineRe.FindStringSubmatch(msg)
	if m == nil {
		return FieldError{File: file, Msg: msg}
	}
	l, _ := strconv.Atoi(m[1])
	text := m[2]
	// "field foo not found in type config.Input" -> "unknown field"
	if f := regexp.MustCompile(`^field (\S+) not found in type \S+$`).FindStringSubmatch(text); f != nil {
		field := f[1]
		if pos != nil {
			if p := pos.fieldAt(l, field); p != "" {
				field = p
			}
		}
		return FieldError{File: file, Line: l, Field: field, Msg: "unknown field"}
	}
	field := ""
	if pos != nil {
		field = pos.fieldAt(l, "")
	}
	text = regexp.MustCompile(`^line \d+: `).ReplaceAllString(text, "")
	text = strings.ReplaceAll(text, "!!str ", "")
	return FieldError{File: file, Line: l, Field: field, Msg: text}
}

// Load reads, defaults and validates the config at path, and loads its
// playbooks. A config that has any error is not returned.
//
// Load also checks the files the config names (filecheck.go): keys,
// password and CA present, secrets and the state folder the daemon's alone.
// What is careless but valid goes to the config's Warnings.
func Load(path string) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if errs := c.checkFiles(); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// MaxConfigSize is the most a config file may hold. A config is read whole
// into memory; a larger one is refused unread.
const MaxConfigSize = 1 << 20

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxConfigSize {
		size := int64(len(data))
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		return nil, fmt.Errorf("%d bytes is over the 1 MiB a config may hold", size)
	}
	return data, nil
}

// Parse is Load on data already read; path names it in errors and anchors
// a relative playbooks_dir.
func Parse(path string, data []byte) (*Config, error) {
	c := &Config{}
	pos, errs := decodeStrict(path, data, c)
	if len(errs) > 0 {
		return nil, errs
	}
	c.File = path
	c.pos = pos
	c.digest = sha256.Sum256(data)
	c.applyDefaults()
	v := &validator{file: path, pos: pos}
	c.validate(v)
	if c.PlaybooksDir != "" {
		dir := c.PlaybooksDir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(path), dir)
		}
		if files, err := playbookFiles(dir); err != nil {
			// Said at playbooks_dir, not in a folder that does not exist,
			// and without a "no robbery playbook" for every required one.
			v.add("playbooks_dir", "%v", err)
		} else {
			pbs, perrs := loadPlaybookFiles(files)
			v.errs = append(v.errs, perrs...)
			c.Playbooks = pbs
			c.validatePlaybookRefs(v)
		}
	}
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	w := &validator{file: path, pos: pos, warnings: true}
	c.warn(w)
	c.Warnings = w.errs
	return c, nil
}

type validator struct {
	file string
	pos  positions
	errs Errors
	// warnings: what it adds are warnings (Config.Warnings), not errors.
	warnings bool
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{File: v.file, Line: v.pos.line(field), Field: field, Msg: fmt.Sprintf(format, args...), Warning: v.warnings})
}

// LoadPlaybooks reads every *.yaml file in dir.
func LoadPlaybooks(dir string) ([]*Playbook, Errors) {
	files, err := playbookFiles(dir)
	if err != nil {
		return nil, Errors{{File: dir, Field: "playbooks_dir", Msg: err.Error()}}
	}
	return loadPlaybookFiles(files)
}

// playbookFiles lists dir's *.yaml files in name order.
func playbookFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no playbook files (*.yaml) in %s", dir)
	}
	sort.Strings(files)
	return files, nil
}

// loadPlaybookFiles decodes and validates each file; a playbook that does
// not decode is left out, one that fails validation is kept.
func loadPlaybookFiles(files []string) ([]*Playbook, Errors) {
	var pbs []*Playbook
	var errs Errors
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, FieldError{File: f, Msg: err.Error()})
			continue
		}
		p := &Playbook{}
		pos, es := decodeStrict(f, data, p)
		if len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		p.File = f
		p.pos = pos
		v := &validator{file: f, pos: pos}
		p.validate(v)
		if prev, dup := seen[p.ID]; dup && p.ID != "" {
			v.add("id", "playbook %q already defined in %s", p.ID, prev)
		}
		seen[p.ID] = f
		errs = append(errs, v.errs...)
		pbs = append(pbs, p)
	}
	return pbs, errs
}

// Digest is the SHA-256 of the config file as loaded, for the journal's
// record of every config load.
func (c *Config) Digest() string { return hex.EncodeToString(c.digest[:]) }
