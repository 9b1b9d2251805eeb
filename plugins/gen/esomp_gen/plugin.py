"""``esomp gen``: write a synthetic exchange day into the site's source directories."""
from __future__ import annotations

import click

from esomp_core import Site, hookimpl, json_option, pass_site, print_json, print_table

from esomp_gen.faults import FAULTS
from esomp_gen.generator import PROFILES, GenError, generate_day


def type_names(values: tuple[str, ...]) -> list[str]:
    """``("A,B", "C")`` -> ``["A", "B", "C"]``: an option given comma-separated, repeated, or both."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("gen")
    @click.option("--date", "date", required=True, help="Business date, CCYYMMDD or YYYY-MM-DD.")
    @click.option("--products", type=int, default=4000, show_default=True, help="Number of trust products.")
    @click.option("--profile", type=click.Choice(sorted(PROFILES)), default="seed-day", show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
    @click.option("--fault", "faults", multiple=True, type=click.Choice(sorted(FAULTS)),
                  help="Inject this fault (repeatable); the manifest lists each with what should catch it.")
    @click.option("--types", "types", multiple=True, metavar="A,B",
                  help="Only these file types (comma-separated or repeated; exact names). Default: all.")
    @click.option("--exclude", "exclude", multiple=True, metavar="A,B",
                  help="All file types but these (comma-separated or repeated).")
    @json_option
    @pass_site
    def gen(site: Site, date: str, products: int, profile: str, seed: int, faults: tuple[str, ...],
            types: tuple[str, ...], exclude: tuple[str, ...], as_json: bool) -> None:
        """Write a synthetic exchange day (every registered file type) and import its product master."""
        try:
            report = generate_day(site, date, products, profile=profile, seed=seed, faults=faults,
                                  types=type_names(types) if types else None, exclude=type_names(exclude))
        except GenError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            print_json(report.as_dict())
            return
        print_table(f"{len(report.files)} files, {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s",
                    ["file", "type", "records", "deleted", "bytes", "path"],
                    [(f["name"], f["type"], f["records"], f["deleted"], f["bytes"], f["path"])
                     for f in report.files])
        click.echo(f"products: {report.products_csv} ({report.imported.get('created', 0)} created, "
                   f"{report.imported.get('updated', 0)} updated)")
        click.echo(f"manifest: {report.manifest}")
        if report.left_out:
            click.echo(f"left out: {', '.join(sorted(report.left_out))}")
        for fault in report.faults:
            click.echo(f"fault {fault['fault']}: {fault['file']} (channel {fault['channel']})")
