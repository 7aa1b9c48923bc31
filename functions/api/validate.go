package api

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Filter is a DMS Describe* filter.
type Filter struct {
	Name   string
	Values []string
}

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// identifier checks a DMS resource identifier: it starts with a letter,
// holds ASCII letters, digits and single hyphens, does not end with one, and
// has at most 255 characters.
func identifier(member, v string) error {
	switch {
	case v == "":
		return invalid("%s is required", member)
	case len(v) > 255:
		return invalid("%s is %d characters long: at most 255 are allowed", member, len(v))
	case !identRE.MatchString(v) || strings.HasSuffix(v, "-") || strings.Contains(v, "--"):
		return invalid("%s %q is not valid: it must start with a letter and hold only ASCII letters, digits and hyphens, with no two hyphens in a row and no hyphen at the end", member, v)
	}
	return nil
}

// Resource kinds in ARNs.
const (
	kindEndpoint = "endpoint"
	kindConfig   = "replication-config"
)

// kindNames names the kinds Sluice has in messages.
var kindNames = map[string]string{kindEndpoint: "endpoint", kindConfig: "replication config"}

// arnRE is the shape of a DMS ARN, arn:<partition>:dms:<region>:<account>:
// <resource type>:<ID>, whichever resource it names: a DMS kind Sluice does
// not have (task, rep, ...), another partition, region or account, or an ID
// no resource has (lower case, hyphens) are all well-formed. The ID's
// characters are those of DMS's IDs and identifiers, so that no ID can
// change the meaning of a store key.
var arnRE = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):dms:([a-z0-9-]+):([0-9]{12}):([a-z]+(?:-[a-z]+)*):([A-Za-z0-9][A-Za-z0-9._-]{0,254})$`)

// newARN makes the ARN of a new resource, with a random resource ID as DMS
// makes them.
func (h *Handler) newARN(kind string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 26)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return fmt.Sprintf("arn:aws:dms:%s:%s:%s:%s", h.Region, h.Account, kind, b)
}

// checkARN checks that v is a well-formed DMS ARN that can name a resource
// of this server of the wanted kind (any kind when kind is empty), and
// returns the kind. As in DMS, only a malformed ARN is an
// InvalidParameterValueException; a well-formed one that names no resource
// here (another kind, region or account) is a ResourceNotFoundFault, and so
// is one the store does not hold, when the caller looks it up.
func (h *Handler) checkARN(member, v, kind string) (string, error) {
	if v == "" {
		return "", invalid("%s is required", member)
	}
	m := arnRE.FindStringSubmatch(v)
	if m == nil {
		return "", invalid("%s %q is not a valid DMS ARN: expected arn:aws:dms:%s:%s:<endpoint|replication-config>:<ID>", member, clip(v), h.Region, h.Account)
	}
	partition, region, account, typ := m[1], m[2], m[3], m[4]
	want := kindNames[kind]
	if want == "" {
		want = "endpoint or replication config"
	}
	switch {
	case partition != "aws" || region != h.Region || account != h.Account:
		return "", notFound("no %s %s: it belongs to partition %s, region %s, account %s; this server is partition aws, region %s, account %s", want, v, partition, region, account, h.Region, h.Account)
	case kindNames[typ] == "":
		return "", notFound("no %s %s: it names a DMS %s, and this server has only endpoints and replication configs", want, v, typ)
	case kind != "" && typ != kind:
		return "", notFound("no %s %s: the ARN names %s", want, v, article(kindNames[typ]))
	}
	return typ, nil
}

// article puts "a" or "an" before a noun.
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// clip shortens a value quoted back in an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// page cuts one page out of items (already filtered and in a stable order).
// The marker is the key of the last item of the previous page.
func page[T any](items []T, key func(T) string, marker string, maxRecords *int) ([]T, string, error) {
	n := 100
	if maxRecords != nil {
		if *maxRecords < 20 || *maxRecords > 100 {
			return nil, "", invalid("MaxRecords %d is out of range: use 20 to 100", *maxRecords)
		}
		n = *maxRecords
	}
	start := 0
	if marker != "" {
		after, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil {
			return nil, "", invalid("Marker is not one this server returned: pass the Marker of the previous response unchanged")
		}
		// The item the last page ended with may have been deleted since:
		// then the page starts from the beginning rather than skip items.
		for i, it := range items {
			if key(it) == string(after) {
				start = i + 1
				break
			}
		}
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return items[start:end], next, nil
}

// filters checks filter names against those an operation allows and returns
// a matcher: match(name, value) is true when no filter of that name is given
// or one of its values equals value.
func filters(fs []Filter, allowed ...string) (func(name, value string) bool, error) {
	by := map[string][]string{}
	for _, f := range fs {
		ok := false
		for _, a := range allowed {
			ok = ok || f.Name == a
		}
		if !ok {
			return nil, invalid("filter %q is not supported here: use one of %s", clip(f.Name), strings.Join(allowed, ", "))
		}
		if len(f.Values) == 0 {
			return nil, invalid("filter %s has no Values", f.Name)
		}
		by[f.Name] = append(by[f.Name], f.Values...)
	}
	return func(name, value string) bool {
		vs, ok := by[name]
		if !ok {
			return true
		}
		for _, v := range vs {
			if strings.EqualFold(v, value) {
				return true
			}
		}
		return false
	}, nil
}

var slotRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// listing is what a Describe* operation lists: the items, under the
// response member key, each found by its ARN for the Marker, with the
// members its filters match by name, and the noun that names the items in
// the fault for filters that match none.
type listing[T any] struct {
	key     string
	noun    string
	list    func() ([]T, error)
	arn     func(T) string
	filters []filter[T]
}

// filter is one filter name a Describe* operation takes and the member it
// matches.
type filter[T any] struct {
	name string
	get  func(T) string
}

// noMatch is DMS's answer to a Describe* request whose filters match
// nothing: a ResourceNotFoundFault, not an empty list (only a request
// without filters lists nothing), which is what waiters for a deleted
// resource wait for (the SDK's EndpointDeleted, Airflow's
// replication_config_deleted).
func noMatch(noun string) *fault {
	return notFound("No %s found matching provided filters", noun)
}

// describe answers a Describe* operation: the items that match every
// filter of the request, one page of them.
func describe[T any](body []byte, l listing[T]) (any, error) {
	var in struct {
		Filters    []Filter
		MaxRecords *int
		Marker     string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	names := make([]string, len(l.filters))
	for i, f := range l.filters {
		names[i] = f.name
	}
	match, err := filters(in.Filters, names...)
	if err != nil {
		return nil, err
	}
	all, err := l.list()
	if err != nil {
		return nil, err
	}
	var out []T
	for _, it := range all {
		if !slices.ContainsFunc(l.filters, func(f filter[T]) bool { return !match(f.name, f.get(it)) }) {
			out = append(out, it)
		}
	}
	if len(out) == 0 && len(in.Filters) > 0 {
		return nil, noMatch(l.noun)
	}
	out, next, err := page(out, l.arn, in.Marker, in.MaxRecords)
	if err != nil {
		return nil, err
	}
	return map[string]any{l.key: nonNil(out), "Marker": omit(next)}, nil
}
