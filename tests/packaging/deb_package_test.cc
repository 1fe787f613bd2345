// The Debian package (issue 22). The DebPackageBuild test (the fixture every test here needs)
// makes qseal_VERSION_ARCH.deb with cpack from this build tree; install-in-root installs it with
// `dpkg --root -i` into a fresh root in a private mount namespace, its postinst running chrooted
// there; the installed qseald checks and then runs the installed /etc/qseal/qseald.toml as the
// qseal user the postinst made, and the installed qsealctl seals a document that openssl
// verifies.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::RunCommand;
using testing::ShellQuote;

const std::string kDeb = QSEAL_DEB_PATH;

std::string InstallInRoot() {
  return std::string(QSEAL_SOURCE_DIR) + "/tests/packaging/install-in-root";
}

// Installs the package into `root` (an empty directory) and runs `script` (sh) in the same mount
// namespace, with $ROOT set; stdout and stderr of both together.
CommandResult InstallAndRun(const testing::TempDir& root, const std::string& script) {
  return RunCommand(ShellQuote(InstallInRoot()) + " " + ShellQuote(kDeb) + " " +
                    ShellQuote(root.path().string()) + " sh -c " + ShellQuote(script) + " 2>&1");
}

std::string Field(const std::string& field) {
  return RunCommand("dpkg-deb --field " + ShellQuote(kDeb) + " " + field).output;
}

class DebPackageTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs::exists(kDeb)) << kDeb << ": see DebPackageBuild"; }
};

TEST_F(DebPackageTest, ControlFieldsNameTheRuntimeLibrariesPackages) {
  EXPECT_EQ(Field("Package"), "qseal\n");
  EXPECT_EQ(Field("Version"), std::string(QSEAL_PACKAGE_VERSION) + "\n");
  // "a (>= 1), b | c, d" -> {a, b, c, d}
  std::set<std::string> depends;
  const std::string field = Field("Depends");
  const std::regex name(R"((^|[,|]) *([a-z0-9][a-z0-9.+-]*))");
  for (auto it = std::sregex_iterator(field.begin(), field.end(), name);
       it != std::sregex_iterator(); ++it) {
    depends.insert((*it)[2].str());
  }
  // adduser for postinst; the rest from dpkg-shlibdeps, one package per library linked.
  for (const char* package :
       {"adduser", "libc6", "libstdc++6", "librocksdb7.8", "libtbb12", "libssl3", "libqpdf29",
        "libxml2", "libnats3.4", "libp11-kit0", "libprometheus-cpp-core1.0", "libtomlplusplus3"}) {
    EXPECT_EQ(depends.count(package), 1u) << package << " missing from Depends: " << field;
  }
  CommandResult contents = RunCommand("dpkg-deb --contents " + ShellQuote(kDeb));
  for (const char* path :
       {"./usr/bin/qseald", "./usr/bin/qsealctl", "./lib/systemd/system/qseald.service",
        "./etc/qseal/qseald.toml", "./var/lib/qseal/", "./usr/share/man/man8/qseald.8.gz",
        "./usr/share/man/man1/qsealctl.1.gz", "./usr/share/man/man5/qseald.toml.5.gz",
        "./usr/share/bash-completion/completions/qsealctl", "./usr/share/doc/qseal/copyright",
        "./usr/share/doc/qseal/changelog.gz"}) {
    EXPECT_NE(contents.output.find(std::string(" ") + path + "\n"), std::string::npos) << path;
  }
}

TEST_F(DebPackageTest, InstallsIntoAFreshRootAndItsPostinstMakesTheUser) {
  const std::string host_user_before = RunCommand("getent passwd qseal").output;
  testing::TempDir root;
  testing::TempDir out;
  const std::string o = ShellQuote(out.path().string());
  CommandResult r = InstallAndRun(
      root,
      "set -e; c=\"chroot $ROOT\"\n"
      "echo \"user: $($c getent passwd qseal)\"\n"
      "$c stat -c 'mode: %n %U:%G %a' /var/lib/qseal /etc/qseal /etc/qseal/qseald.toml\n"
      "echo \"status: $($c dpkg-query -W -f '${Status}|${Conffiles}' qseal)\"\n"
      "echo \"enabled: $(ls $ROOT/etc/systemd/system/multi-user.target.wants 2>/dev/null)\"\n"
      // As the unit's ExecStartPre does: the qseal user checks the installed configuration.
      "$c setpriv --reuid=qseal --regid=qseal --init-groups /usr/bin/qseald "
      "--config /etc/qseal/qseald.toml --check-config\n"
      "$c /usr/bin/qseald --version\n"
      "file -b $ROOT/usr/bin/qseald $ROOT/usr/bin/qsealctl\n"
      "cp $ROOT/lib/systemd/system/qseald.service $ROOT/etc/qseal/qseald.toml " +
          o +
          "/\n"
          "for p in man8/qseald.8 man1/qsealctl.1 man5/qseald.toml.5; do\n"
          "  zcat $ROOT/usr/share/man/$p.gz | groff -man -Tutf8 -ww -z 2>&1 | sed \"s|^|$p: |\"\n"
          "done\n"
          "bash -n $ROOT/usr/share/bash-completion/completions/qsealctl\n"
          // systemd on the installed system accepts the installed unit and scores it as
          // conf/'s (ServiceUnitTest).
          "echo \"verify: $($c systemd-analyze verify /lib/systemd/system/qseald.service 2>&1)\"\n"
          "$c systemd-analyze security --offline=yes --threshold=20 --no-pager "
          "/lib/systemd/system/qseald.service >/dev/null && echo 'security: at most 2.0'\n"
          "echo done\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\nSetting up qseal (" QSEAL_PACKAGE_VERSION ") ...\n"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(std::regex_search(
      r.output,
      std::regex(R"(user: qseal:x:[0-9]+:[0-9]+:[^:]*:/var/lib/qseal:/usr/sbin/nologin)")))
      << r.output;
  EXPECT_NE(r.output.find("mode: /var/lib/qseal qseal:qseal 750\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mode: /etc/qseal root:qseal 750\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mode: /etc/qseal/qseald.toml root:root 644\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("status: install ok installed|"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" /etc/qseal/qseald.toml "), std::string::npos) << r.output;
  // Not enabled by the package: the configuration must first point at the HSM.
  EXPECT_NE(r.output.find("enabled: \n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/etc/qseal/qseald.toml: configuration OK\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("qseald " QSEAL_PACKAGE_VERSION " ("), std::string::npos) << r.output;
  EXPECT_EQ(std::regex_search(r.output, std::regex("not stripped")), false) << r.output;
  // groff printed nothing for any page; the completion script parses.
  EXPECT_EQ(r.output.find("man8/"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("man1/"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("man5/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nverify: \n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nsecurity: at most 2.0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\ndone\n"), std::string::npos) << r.output;
  // Nothing of it reached the host.
  EXPECT_EQ(RunCommand("getent passwd qseal").output, host_user_before);

  // The packaged unit and configuration are conf/'s with only their paths changed.
  std::string unit = testing::ReadFile(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.service");
  for (std::size_t at; (at = unit.find("/usr/local/bin/")) != std::string::npos;) {
    unit.replace(at, std::string("/usr/local/bin/").size(), "/usr/bin/");
  }
  EXPECT_EQ(testing::ReadFile(out.Sub("qseald.service")), unit);
  const std::string toml = testing::ReadFile(out.Sub("qseald.toml"));
  EXPECT_EQ(toml.find("${QSEAL_VAR:-var}"), std::string::npos);
  EXPECT_NE(toml.find("path = \"${QSEAL_VAR:-/var/lib/qseal}/queue\""), std::string::npos);
}

// Installing again (an upgrade in place) keeps the user and the statoverrides; purging removes
// the package and the statoverrides but keeps the qseal user and what is in /var/lib/qseal.
TEST_F(DebPackageTest, ReinstallAndPurgeKeepTheUserAndTheState) {
  testing::TempDir root;
  // dpkg run from outside would look the statoverrides' qseal user up in the host's accounts:
  // the second install and the purge run inside the root, as on the installed system.
  CommandResult r = InstallAndRun(
      root, "set -e; c=\"chroot $ROOT\"; cp " + ShellQuote(kDeb) +
                " $ROOT/tmp/qseal.deb\n"
                "uid=$($c id -u qseal)\n"
                "$c dpkg --force-depends -i /tmp/qseal.deb >/dev/null 2>&1\n"
                "echo \"again: $($c id -u qseal) $($c dpkg-statoverride --list | wc -l)\"\n"
                "mkdir $ROOT/var/lib/qseal/audit && echo record > $ROOT/var/lib/qseal/audit/seg\n"
                "$c dpkg --purge qseal\n"
                "echo \"purged: $($c dpkg-query -W -f '${Status}' qseal 2>&1 || true)\"\n"
                "echo \"user: $($c id -u qseal) (was $uid)\"\n"
                "echo \"overrides: $($c dpkg-statoverride --list | wc -l)\"\n"
                "echo \"state: $(cat $ROOT/var/lib/qseal/audit/seg)\"\n"
                "echo \"binary: $(ls $ROOT/usr/bin/qseald 2>&1 | grep -c 'No such')\"\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\nagain: [0-9]+ 2\n)"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\nuser: ([0-9]+) \(was \1\)\n)")))
      << r.output;
  EXPECT_NE(r.output.find("\noverrides: 0\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nstate: record\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nbinary: 1\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("purged: install ok"), std::string::npos) << r.output;
}

// The installed qseald, as the qseal user in the fresh root, runs the installed configuration
// with its state in the packaged /var/lib/qseal (SoftHSM2 tokens, TLS certificate and API token
// provisioned there as the embedded default has them); the installed qsealctl seals through it.
TEST_F(DebPackageTest, InstalledDaemonStartsAndSealsWithTheInstalledConfiguration) {
  testing::TempDir work;
  testing::Qseald provisioned(work.path().string());
  ASSERT_TRUE(provisioned.Prepare().ok());
  const std::string var = provisioned.var();
  testing::TempDir root;
  const std::string script =
      "set -e\n"
      "cp -a \"$VAR\"/. $ROOT/var/lib/qseal/\n"
      "sed -i \"s|$VAR|/var/lib/qseal|\" $ROOT/var/lib/qseal/softhsm2.conf\n"
      "chroot $ROOT chown -R qseal:qseal /var/lib/qseal\n"
      "exec chroot $ROOT setpriv --reuid=qseal --regid=qseal --init-groups env "
      "QSEAL_VAR=/var/lib/qseal SOFTHSM2_CONF=/var/lib/qseal/softhsm2.conf "
      "QSEAL_API_ADDR=127.0.0.1:0 QSEAL_METRICS_ADDR=127.0.0.1:0 "
      "/usr/bin/qseald --config /etc/qseal/qseald.toml\n";
  testing::ChildProcess daemon;
  ASSERT_TRUE(daemon
                  .Start({InstallInRoot(), kDeb, root.path().string(), "/bin/sh", "-c", script},
                         work.Sub("qseald.log"), {"VAR=" + var})
                  .ok());
  const std::string line = daemon.WaitForLine("\"qseald started\"", std::chrono::seconds(90));
  ASSERT_FALSE(line.empty()) << daemon.Stderr();
  const std::string api = nlohmann::json::parse(line)["api_url"];

  // dpkg wrote the installed qsealctl through the overlay into ROOT/.usr-upper.
  const std::string qsealctl = root.Sub(".usr-upper/bin/qsealctl");
  const std::string cli = "QSEAL_VAR=" + ShellQuote(var) + " QSEAL_SERVER=" + ShellQuote(api) +
                          " " + ShellQuote(qsealctl);
  CommandResult health = RunCommand(cli + " health 2>&1");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  testing::WriteFile(work.Sub("invoice.xml"), "<invoice><total>42.00</total></invoice>\n");
  fs::create_directories(work.Sub("sealed"));
  CommandResult submit = RunCommand(cli + " submit " + ShellQuote(work.Sub("invoice.xml")) +
                                    " --wait --out " + ShellQuote(work.Sub("sealed")) + " 2>&1");
  EXPECT_EQ(submit.exit_code, 0) << submit.output << daemon.Stderr();
  EXPECT_EQ(testing::OpensslVerify(work.Sub("sealed/invoice.xml.p7s"), var + "/pki/ca.pem",
                                   work.Sub("invoice.xml")),
            "");
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(60)), 0) << daemon.Stderr();
}

}  // namespace
}  // namespace qseal
