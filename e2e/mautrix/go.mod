module github.com/tctoken/tctoken/e2e/mautrix

go 1.26.0

require gopkg.in/yaml.v3 v3.0.1
