package main

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// setYAML edits a YAML file in place: each assignment is "a.b.c=value",
// where value is YAML ("true", "[x, y]", "{'*': relay}"). Missing mapping
// keys are created; comments elsewhere in the file are kept.
func setYAML(path string, assignments []string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err = yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return fmt.Errorf("%s is not one YAML document", path)
	}
	for _, a := range assignments {
		key, value, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("assignment %q has no =", a)
		}
		var v yaml.Node
		if err = yaml.Unmarshal([]byte(value), &v); err != nil {
			return fmt.Errorf("value of %s: %w", key, err)
		}
		valueNode := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		if len(v.Content) == 1 {
			valueNode = v.Content[0]
		}
		if err = setPath(doc.Content[0], strings.Split(key, "."), valueNode); err != nil {
			return fmt.Errorf("%s: set %s: %w", path, key, err)
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func setPath(node *yaml.Node, path []string, value *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		// A null section ("proxy: null" style) becomes a mapping.
		if node.Tag != "!!null" {
			return fmt.Errorf("%q is not a mapping", path[0])
		}
		node.Kind, node.Tag, node.Value = yaml.MappingNode, "!!map", ""
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			node.Content[i+1] = value
			return nil
		}
		return setPath(node.Content[i+1], path[1:], value)
	}
	keyNode := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) == 1 {
		node.Content = append(node.Content, keyNode, value)
		return nil
	}
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	node.Content = append(node.Content, keyNode, child)
	return setPath(child, path[1:], value)
}
