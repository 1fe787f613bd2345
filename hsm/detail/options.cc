#include "hsm/detail/options.h"

#include <string>
#include <unordered_set>

#include "hsm/detail/partition.h"

namespace qseal::hsm::detail {

Status ValidateOptions(const SignerOptions& options,
                       const std::vector<PartitionOptions>& partitions,
                       const std::vector<KeyOptions>& keys) {
  if (partitions.empty()) return InvalidArgumentError("no partition configured");
  if (keys.empty()) return InvalidArgumentError("no key configured");
  if (options.max_batch == 0 || options.max_pending == 0 || options.max_attempts < 1) {
    return InvalidArgumentError("max_batch, max_pending and max_attempts must be positive");
  }
  if (options.hung_call_timeout < options.sign_timeout) {
    return InvalidArgumentError("hung_call_timeout must be at least sign_timeout");
  }
  // A queue shorter than max_batch waits max_linger before it is dispatched: at max_queue_time or
  // more its requests would expire while lingering.
  if (options.max_linger >= options.max_queue_time) {
    return InvalidArgumentError("max_linger must be shorter than max_queue_time");
  }
  std::unordered_set<std::string> partition_names;
  for (const PartitionOptions& po : partitions) {
    if (po.name.empty()) return InvalidArgumentError("a partition has no name");
    if (!partition_names.insert(po.name).second) {
      return InvalidArgumentError("partition '" + po.name + "' configured twice");
    }
    if (po.module_path.empty()) {
      return InvalidArgumentError("partition '" + po.name + "': module is empty");
    }
    if (po.token_label.empty() && po.token_serial.empty()) {
      return InvalidArgumentError("partition '" + po.name + "': needs a token label or serial");
    }
    if (po.sessions < 1 || po.sessions > 1024) {
      return InvalidArgumentError("partition '" + po.name + "': sessions must be 1..1024");
    }
    if (po.keepalive_interval.count() < 0) {
      return InvalidArgumentError("partition '" + po.name + "': keepalive_interval is negative");
    }
    if (po.device_error_retries < 0 || po.device_error_retries > 10) {
      return InvalidArgumentError("partition '" + po.name +
                                  "': device_error_retries must be 0..10");
    }
  }
  std::unordered_set<std::string> key_names;
  for (const KeyOptions& ko : keys) {
    if (ko.name.empty()) return InvalidArgumentError("a key has no name");
    if (!key_names.insert(ko.name).second) {
      return InvalidArgumentError("key '" + ko.name + "' configured twice");
    }
    auto uri = ParseKeyUri(ko.uri);
    if (!uri.ok()) return uri.status().WithContext("key '" + ko.name + "'");
    if (ko.partitions.empty()) return InvalidArgumentError("key '" + ko.name + "': no partitions");
    for (const std::string& pn : ko.partitions) {
      if (partition_names.count(pn) == 0) {
        return InvalidArgumentError("key '" + ko.name + "': unknown partition '" + pn + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace qseal::hsm::detail
