"""The products import: codes that become directories, encodings, extra fields, account formats and NULs."""
import pytest

from esomp_core.products import ImportError_, import_products, query_products

HEADER = "product,name,institution,institution_name,classification,status,sz_accounts,sh_accounts\n"
ROW = "P001,家族信托一号,INST1,甲信托,,active,0012345678,A123456789\n"


def refused(repo, text, **kwargs):
    with pytest.raises(ImportError_) as info:
        import_products(repo, "products.csv", text=text, **kwargs)
    assert not query_products(repo)  # all or nothing
    return info.value.errors


def refused_file(repo, path, **kwargs):
    with pytest.raises(ImportError_) as info:
        import_products(repo, path, **kwargs)
    assert not query_products(repo)
    return info.value


@pytest.mark.parametrize("code", [".", "..", ".hidden", "a b"])
def test_product_codes_that_are_not_directory_names_are_refused(repository, code):
    errors = refused(repository, HEADER + ROW + f"{code},x,INST1,,,,,\n")
    assert errors == [f"line 3: product code {code!r} cannot be used in a path (1 to 64 letters, digits, '_', "
                      "'.' or '-', not starting with '.' or '-')"]


@pytest.mark.parametrize("code", [".", "..", "a/b"])
def test_institution_codes_that_are_not_directory_names_are_refused(repository, code):
    errors = refused(repository, HEADER + f"P002,x,{code},,,,,\n")
    assert len(errors) == 1 and errors[0].startswith(f"line 2: product P002: institution code {code!r} cannot")


def test_a_line_with_more_fields_than_the_header_is_refused(repository):
    errors = refused(repository, HEADER + ROW + "P002,x,INST1,,,,0012345679,A123456780,extra\n")
    assert errors == ["line 3: 9 fields, the header has 8 (a comma inside a name needs quotes)"]


@pytest.mark.parametrize("column, account, market", [
    ("sz", "12345678", "SZ"),        # 8 digits: written with the 00 prefix since the 10-digit format
    ("sz", "1012345678", "SZ"),
    ("sz", "00123456789", "SZ"),
    ("sz", "A123456789", "SZ"),
    ("sh", "0012345678", "SH"),
    ("sh", "A12345678", "SH"),
    ("sh", "a123456789", "SH"),
    ("sh", "AB23456789", "SH"),
])
def test_accounts_not_in_their_markets_format_are_refused(repository, column, account, market):
    sz, sh = (account, "") if column == "sz" else ("", account)
    errors = refused(repository, HEADER + f"P002,x,INST1,,,,{sz},{sh}\n")
    assert len(errors) == 1
    assert errors[0].startswith(f"line 2: product P002: account {market} {account!r} is not")


@pytest.mark.parametrize("account", ["0012345678", "0812345678", "2012345678"])
def test_shenzhen_accounts_in_format_pass(repository, account):
    import_products(repository, "p.csv", text=HEADER + f"P002,x,INST1,,,,{account},B123456789\n")
    assert query_products(repository)[0]["accounts"] == [f"SZ:{account}", "SH:B123456789"]


def test_a_nul_is_refused_naming_its_line(repository):
    errors = refused(repository, HEADER + ROW + "P002,x\0y,INST1,,,,,\n")
    assert errors == ["line 3: contains a NUL character (a binary or damaged file?)"]


@pytest.mark.parametrize("encoding, label", [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 with BOM"),
                                             ("gbk", "GBK")])
def test_gbk_and_utf8_with_or_without_bom_are_read_and_the_encoding_is_said(repository, tmp_path, encoding,
                                                                           label):
    path = tmp_path / "products.csv"
    path.write_bytes((HEADER + ROW).encode(encoding))
    summary = import_products(repository, path)
    assert summary.encoding == label
    assert query_products(repository)[0]["name"] == "家族信托一号"


def test_a_file_in_neither_encoding_is_refused_naming_the_line(repository, tmp_path):
    path = tmp_path / "products.csv"
    ascii_row = "P001,x,INST1,,,,0012345678,\n"
    path.write_bytes((HEADER + ascii_row + "P002,caf\xe9,INST1,,,,,\n").encode("latin-1"))
    error = refused_file(repository, path)
    assert error.errors == ["line 3: neither UTF-8 nor GBK (byte 0xe9 at column 9); save the file as UTF-8"]


def test_an_explicit_encoding_is_used_and_an_unknown_one_refused(repository, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes((HEADER + ROW).encode("gb18030"))
    error = refused_file(repository, path, encoding="klingon")
    assert error.errors == ["unknown encoding 'klingon'"]
    assert import_products(repository, path, encoding="gb18030").encoding == "gb18030"


def test_a_file_in_the_wrong_explicit_encoding_names_the_line(repository, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes((HEADER + ROW).encode("gbk"))
    error = refused_file(repository, path, encoding="utf-8")
    assert len(error.errors) == 1 and error.errors[0].startswith("line 2: not utf-8 (byte 0xbc at column")
