// The documents the harness seals: deterministic invoice-like text files, generated once into a
// directory and reused by a kept work dir (--keep), so every run of the same options seals the
// same bytes.
//
// Corpora (--corpus): invoice, 2 KiB each; mix, 74 % about 2 KiB, 20 % 40 KiB, 5 % 300 KiB and
// 1 % between 1 and 10 MiB. The format scenarios have their own: ubl, the UBL 2.1 sample invoice
// of tests/formats/data (3.4 KiB) with a unique invoice number per document (api_xades); pdf,
// one-page text PDFs of about 2 KiB with a classic xref table (formats::testing::HandWrittenPdf),
// unique per document (api_pades).
//
// Functions are thread-safe; Corpus is a plain value, thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qseal::bench::e2e {

// Document `i`'s bytes, `size` long: invoice-like text with a unique number, padded with
// xorshift bytes rendered as hex. The same (i, size) always gives the same bytes.
std::string Content(int i, std::size_t size);

// The files of one corpus, in order: names[i] is the file name of paths[i].
struct Corpus {
  std::vector<std::string> names;
  std::vector<std::string> paths;
  std::uint64_t bytes = 0;  // their total size
};

// UBL invoice `i`: the sample invoice with the number INV-2026-0042 replaced by INV-NNNNNNN (the
// same length, so every document has the same size). Throws std::runtime_error when the sample
// cannot be read.
std::string UblInvoice(int i);

// PDF `i`: one A4 page of invoice text (Helvetica, a unique number and amounts), written as
// text with a correct xref table (formats::testing::HandWrittenPdf), so `qpdf --check` accepts it.
// The same i gives the same bytes.
std::string InvoicePdf(int i);

// Writes `n` documents of corpus `kind` ("invoice", "mix", "ubl" or "pdf") as
// dir/inv-NNNNNNN.txt (.xml, .pdf), creating `dir`; a file already there with the right size is
// kept. Throws std::filesystem_error when the directory cannot be made or read.
Corpus MakeCorpus(const std::string& dir, const std::string& kind, int n);

}  // namespace qseal::bench::e2e
