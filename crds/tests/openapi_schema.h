// crds/tests/openapi_schema.h — the parts of the API server's handling of a CRD's
// openAPIV3Schema that can be checked without one: defaulting, and validation by type,
// enum, pattern, bounds, required and unknown fields (what the API server refuses with
// strict field validation). CEL rules (x-kubernetes-validations) are not evaluated here:
// e2e/kube checks them against a real API server.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace agentry::crds {

// Sets every missing property that has a default, recursively (a defaulted object's own
// properties are defaulted too, as the API server does).
void ApplyDefaults(const YAML::Node& schema, YAML::Node value);

// The ways `value` breaks `schema`, one "path: why" each; empty when it is valid.
std::vector<std::string> Validate(const YAML::Node& schema, const YAML::Node& value,
                                  const std::string& path = "");

// Every property path of `schema` ("spec.tools[].http.url"), objects included.
std::vector<std::string> PropertyPaths(const YAML::Node& schema, const std::string& path = "");

}  // namespace agentry::crds
