// Extracts the metric names a PromQL expression selects, for the dashboard and alert checks.
#pragma once

#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace qseal::metrics::test {

// PromQL functions, aggregations and keywords a dashboard or rule may use (not metric names).
inline const std::set<std::string>& PromqlWords() {
  static const std::set<std::string> words = {"sum",
                                              "min",
                                              "max",
                                              "avg",
                                              "count",
                                              "stddev",
                                              "topk",
                                              "bottomk",
                                              "quantile",
                                              "by",
                                              "without",
                                              "on",
                                              "ignoring",
                                              "group_left",
                                              "group_right",
                                              "and",
                                              "or",
                                              "unless",
                                              "bool",
                                              "offset",
                                              "rate",
                                              "irate",
                                              "increase",
                                              "delta",
                                              "deriv",
                                              "histogram_quantile",
                                              "clamp_min",
                                              "clamp_max",
                                              "abs",
                                              "time",
                                              "vector",
                                              "scalar",
                                              "label_replace",
                                              "max_over_time",
                                              "min_over_time",
                                              "avg_over_time",
                                              "absent",
                                              "changes",
                                              "resets"};
  return words;
}

// Identifiers of `expr` that are neither PromQL words nor label names: label matchers
// ({...}), ranges ([...]), strings and the label lists of by/without/on/ignoring are skipped.
inline std::vector<std::string> SelectedNames(const std::string& expr) {
  std::vector<std::string> names;
  std::string prev_word;
  for (std::size_t i = 0; i < expr.size();) {
    const char c = expr[i];
    if (c == '"' || c == '\'') {
      const std::size_t end = expr.find(c, i + 1);
      i = end == std::string::npos ? expr.size() : end + 1;
    } else if (c == '{' || c == '[') {
      const std::size_t end = expr.find(c == '{' ? '}' : ']', i + 1);
      i = end == std::string::npos ? expr.size() : end + 1;
    } else if (c == '(' && (prev_word == "by" || prev_word == "without" || prev_word == "on" ||
                            prev_word == "ignoring" || prev_word == "group_left" ||
                            prev_word == "group_right")) {
      const std::size_t end = expr.find(')', i + 1);
      i = end == std::string::npos ? expr.size() : end + 1;
      prev_word.clear();
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      while (i < expr.size() &&
             (std::isalnum(static_cast<unsigned char>(expr[i])) != 0 || expr[i] == '.')) {
        ++i;
      }
      prev_word.clear();
    } else if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':') {
      std::size_t j = i;
      while (j < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[j])) != 0 ||
                                 expr[j] == '_' || expr[j] == ':')) {
        ++j;
      }
      std::string word = expr.substr(i, j - i);
      if (PromqlWords().count(word) == 0) names.push_back(word);
      prev_word = word;
      i = j;
    } else {
      if (std::isspace(static_cast<unsigned char>(c)) == 0) prev_word.clear();
      ++i;
    }
  }
  return names;
}

}  // namespace qseal::metrics::test
