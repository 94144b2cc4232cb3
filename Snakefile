# tasksim: task taxonomies from model similarity.
#   snakemake --cores N                              real reproduction (config/config.yaml)
#   snakemake --cores N --configfile config/demo.yaml   offline demo (Mini-Taskonomy)
# Layout of every file: docs/data-layout.md. Configuration: config/README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/minitaskonomy.smk"
include: "workflow/rules/zoo.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/similarity_common.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/taxonomy_common.smk"
include: "workflow/rules/taxonomy.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/transferability_common.smk"
include: "workflow/rules/transferability.smk"


# The report's front page: the run's own headline once the summary exists, else the static text.
report:
    os.path.abspath(REPORT_FRONT_PAGE)
    if os.path.exists(REPORT_FRONT_PAGE)
    else "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
