package api

import (
	"cmp"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text the API passes on to the store must be UTF-8 without NUL:
// Postgres refuses both in text, and ferry does not alter what it is given.
// A request that breaks the rule is refused with 400 naming the field,
// before a handler sees it (query strings and path values) or as its JSON
// body is read (decodeJSON).

// checkText returns why v, the value of field, cannot be stored, or nil.
func checkText(field, v string) error {
	switch {
	case !utf8.ValidString(v):
		return badRequest("%s is not valid UTF-8", field)
	case strings.ContainsRune(v, 0):
		return badRequest("%s holds a NUL byte", field)
	}
	return nil
}

// checkRequestText applies the rule to r's query string and the values of
// its route's wildcards.
func checkRequestText(r *http.Request) error {
	for name, vs := range r.URL.Query() {
		if err := checkText("the name of a query parameter", name); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkText("query parameter "+strconv.Quote(name), v); err != nil {
				return err
			}
		}
	}
	for _, name := range wildcards(r.Pattern) {
		if err := checkText(name+" in the path", r.PathValue(name)); err != nil {
			return err
		}
	}
	return nil
}

// wildcards returns the names of a route pattern's wildcards: "name" for
// "GET /v1/batches/{name}/report".
func wildcards(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		j := strings.IndexByte(pattern, '}')
		if i < 0 || j < i {
			return names
		}
		names = append(names, strings.TrimSuffix(pattern[i+1:j], "..."))
		pattern = pattern[j+1:]
	}
}

// nulField returns the JSON name of the first string of v (a decoded JSON
// body: structs, maps, slices, pointers) that holds NUL, or "". Decoded
// JSON is always valid UTF-8, but "\u0000" decodes to NUL.
func nulField(v any) string {
	return nulIn(reflect.ValueOf(v), "")
}

func nulIn(v reflect.Value, name string) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return nulIn(v.Elem(), name)
		}
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			return name
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			n := name // an embedded struct's fields are its parent's
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); !f.Anonymous || tag != "" {
				n = joinField(name, cmp.Or(tag, f.Name))
			}
			if bad := nulIn(v.Field(i), n); bad != "" {
				return bad
			}
		}
	case reflect.Map, reflect.Slice, reflect.Array:
		return nulInElems(v, name)
	}
	return ""
}

// nulInElems is nulIn for the keys and elements of a map, a slice or an
// array.
func nulInElems(v reflect.Value, name string) string {
	if v.Kind() == reflect.Map {
		it := v.MapRange()
		for it.Next() {
			k := fmt.Sprint(it.Key().Interface())
			if strings.ContainsRune(k, 0) {
				return joinField(name, "(a key)")
			}
			if bad := nulIn(it.Value(), joinField(name, strconv.Quote(k))); bad != "" {
				return bad
			}
		}
		return ""
	}
	for i := range v.Len() {
		if bad := nulIn(v.Index(i), name+"["+strconv.Itoa(i)+"]"); bad != "" {
			return bad
		}
	}
	return ""
}

func joinField(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}
