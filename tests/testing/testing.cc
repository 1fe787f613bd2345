#include "tests/testing/testing.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

namespace qseal::testing {

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/qseal-test.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> ListNames(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

Result<SoftHsm> ProvisionSoftHsm(const std::string& dir, const std::vector<std::string>& tokens,
                                 const std::string& key_type, const std::string& key_label,
                                 const std::string& extra_args) {
  std::string cmd = ShellQuote(std::string(QSEAL_SOURCE_DIR) + "/scripts/provision-softhsm") +
                    " --dir " + ShellQuote(dir) + " --key-type " + ShellQuote(key_type) +
                    " --key-label " + ShellQuote(key_label);
  for (const auto& t : tokens) cmd += " --token " + ShellQuote(t);
  if (!extra_args.empty()) cmd += " " + extra_args;
  CommandResult r = RunCommand(cmd);
  if (r.exit_code != 0) {
    return UnavailableError("provision-softhsm failed (" + std::to_string(r.exit_code) +
                            "): " + r.output);
  }
  SoftHsm hsm;
  hsm.dir = std::filesystem::absolute(dir).string();
  hsm.conf = hsm.dir + "/softhsm2.conf";
  hsm.module = "/usr/lib/softhsm/libsofthsm2.so";
  hsm.pin = ReadFile(hsm.dir + "/pin");
  hsm.ca_pem = hsm.dir + "/pki/ca.pem";
  setenv("SOFTHSM2_CONF", hsm.conf.c_str(), 1);
  return hsm;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace qseal::testing

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

namespace qseal::testing {

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

Status ChildProcess::Start(const std::vector<std::string>& argv, const std::string& stderr_path,
                           const std::vector<std::string>& env) {
  stderr_path_ = stderr_path;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return UnavailableError("fork failed");
  if (pid == 0) {
    int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDERR_FILENO);
      dup2(fd, STDOUT_FILENO);
    }
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    execv(args[0], args.data());
    _exit(127);
  }
  pid_ = pid;
  return Status::Ok();
}

bool ChildProcess::Exited() {
  if (reaped_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
  reaped_ = true;
  pid_ = -1;
  exit_code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : -1;
  return true;
}

std::string ChildProcess::WaitForLine(const std::string& needle,
                                      std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFile(stderr_path_);
    std::size_t pos = text.find(needle);
    if (pos != std::string::npos) {
      std::size_t start = text.rfind('\n', pos);
      start = start == std::string::npos ? 0 : start + 1;
      std::size_t end = text.find('\n', pos);
      return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    if (exited) break;  // One last read after the exit, then give up.
    exited = Exited();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

void ChildProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) {
    reaped_ = false;
    return exit_code_;
  }
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace qseal::testing
