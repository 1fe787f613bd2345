// Helpers for reading the Prometheus text format in the metrics tests.
#pragma once

#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace qseal::metrics::test {

// The value of the sample whose line starts with `series` (name plus the exact label block, e.g.
// `qseal_documents_sealed_total{profile="p",source="api"}`), or nullopt if there is none.
inline std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

// Names of the families declared by "# TYPE name type" lines.
inline std::set<std::string> FamilyNames(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name;
    fields >> name;
    names.insert(name);
  }
  return names;
}

// Names a PromQL/exposition consumer can select: the families, plus _bucket/_sum/_count of
// histograms.
inline std::set<std::string> SelectableNames(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name, type;
    fields >> name >> type;
    names.insert(name);
    if (type == "histogram" || type == "summary") {
      names.insert(name + "_bucket");
      names.insert(name + "_sum");
      names.insert(name + "_count");
    }
  }
  return names;
}

}  // namespace qseal::metrics::test
