# Every dependency comes from a Debian 12 package (scripts/deps installs them).
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(TBB REQUIRED)
find_package(RocksDB CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(LibXml2 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(P11KIT REQUIRED IMPORTED_TARGET p11-kit-1)
# The NATS C client (libnats-dev): the JetStream source and result sink (docs/scale-out.md).
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
# librdkafka (librdkafka-dev): the Kafka source and result sink (issue 20, item 3; docs/scale-out.md).
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
# qpdf (formats/pades parses PDFs with it). POINTERHOLDER_TRANSITION=4: qpdf 11's headers use
# std::shared_ptr only and do not warn about its old PointerHolder.
pkg_check_modules(QPDF REQUIRED IMPORTED_TARGET libqpdf)
target_compile_definitions(PkgConfig::QPDF INTERFACE POINTERHOLDER_TRANSITION=4)
if(QSEAL_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
  # libseccomp (libseccomp-dev): tests/sandbox reproduces conf/qseald.service's seccomp filter.
  pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
endif()
if(QSEAL_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
