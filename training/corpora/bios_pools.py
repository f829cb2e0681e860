"""Value pools of the synthetic biographies (bioS): names, cities, universities, majors, employers.

Written for this project (Physics of LMs 3.1 sizes: ~400 first / ~400 middle / ~1000 last
names, ~200 cities, ~300 universities, ~100 majors, ~260 employers each with a city). Names and
institutions are built combinatorially from short syllable and word lists, so the pools are
large without being long to read; every pool is fixed (no seed), a tuple in a stable order,
without duplicates.
"""

from __future__ import annotations

import random

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
YEARS = tuple(range(1900, 2100))
DAYS = tuple(range(1, 29))  # 1-28 so every month has every day


def _combine(heads: str, tails: str) -> tuple[str, ...]:
    """Every ``head + tail`` (``-`` in ``tails`` stands for the empty tail), in order, unique."""
    out = dict.fromkeys(h + ("" if t == "-" else t) for h in heads.split() for t in tails.split())
    return tuple(out)


FIRST_NAMES = _combine(
    "Ad Al Am Bel Bri Cal Cor Dar El Em Fen Gal Hal Is Jas Kel Lor Mar Nor Ros",
    "a ah ia ina en ine on ric ley lyn o an is ey ora ian eth ius ette wyn")
MIDDLE_NAMES = _combine(
    "Ash Bay Cass Dell Eve Fay Glen Hope Ivy June Kit Lane Mae Neve Oak Pax Quill Rue Sage Tate",
    "- ton ley wyn ell ara ian ette er o en is ric ine a mond field by win el")
LAST_NAMES = _combine(
    "Ash Birch Black Bram Brook Cald Carr Clay Cole Crane Dun Elm Fair Fox Gar Glad Gold Green "
    "Hart Hay Hol Kings Lang Lock Marsh Mill Moor Nor Oak Pen Rad Red Rich Ros Rye Sand Shel "
    "Stan Stone Thorn Wake Wal West Whit Wind Wint Wood Wy Yar Brad",
    "son ley ford wood field man ton well worth by ridge more land stead wick ham croft burn "
    "shaw dale")

CITIES = tuple("""
Aberdeen|Adelaide|Akron|Albany|Albuquerque|Alexandria|Algiers|Amarillo|Amsterdam|Anchorage
Ankara|Annapolis|Antwerp|Arlington|Asheville|Athens|Atlanta|Auckland|Augusta|Austin
Baltimore|Bangor|Barcelona|Basel|Baton Rouge|Belfast|Bergen|Berlin|Bern|Billings
Birmingham|Bismarck|Bologna|Boise|Bordeaux|Boston|Boulder|Bremen|Brisbane|Bristol
Brno|Brussels|Budapest|Buffalo|Burlington|Cairo|Calgary|Cambridge|Canberra|Cardiff
Charleston|Charlotte|Chattanooga|Cheyenne|Chicago|Cincinnati|Cleveland|Cologne|Columbus|Copenhagen
Cork|Dallas|Dayton|Denver|Des Moines|Detroit|Dresden|Dublin|Duluth|Dundee
Durham|Edinburgh|Edmonton|El Paso|Erie|Eugene|Fargo|Florence|Frankfurt|Fresno
Galway|Geneva|Genoa|Ghent|Glasgow|Gothenburg|Graz|Green Bay|Hamburg|Hanover
Harrisburg|Hartford|Helena|Helsinki|Honolulu|Houston|Indianapolis|Innsbruck|Jackson|Juneau
Kansas City|Knoxville|Krakow|Lansing|Laramie|Las Vegas|Leeds|Leipzig|Lexington|Lille
Lincoln|Lisbon|Little Rock|Liverpool|Ljubljana|London|Louisville|Lyon|Madison|Madrid
Malmo|Manchester|Marseille|Melbourne|Memphis|Miami|Milan|Milwaukee|Minneapolis|Mobile
Montgomery|Montpellier|Montreal|Munich|Nantes|Naples|Nashville|Newcastle|New Haven|Norfolk
Nottingham|Oakland|Odessa|Omaha|Orlando|Oslo|Ottawa|Oxford|Palermo|Paris
Pasadena|Perth|Philadelphia|Phoenix|Pittsburgh|Porto|Portland|Prague|Providence|Provo
Quebec City|Raleigh|Reno|Richmond|Riga|Rochester|Rome|Rotterdam|Sacramento|Salem
Salt Lake City|Salzburg|San Antonio|San Diego|Santa Fe|Savannah|Seattle|Seville|Sheffield|Spokane
Springfield|Stockholm|Strasbourg|Stuttgart|Sydney|Syracuse|Tacoma|Tallinn|Tampa|Tallahassee
Toledo|Toronto|Toulouse|Trieste|Tucson|Tulsa|Turin|Utrecht|Valencia|Vancouver
""".replace("\n", "|").strip("|").split("|"))

_UNIVERSITY_FOUNDERS = (
    "Abbott Barlow Carver Dalton Ellison Fairchild Garrison Hawthorne Ingram Jarvis Kendall "
    "Lowell Merritt Norwood Oakley Prescott Quimby Radcliffe Sterling Thornton Underwood Vaughn "
    "Whitman Yardley Ainsworth Bancroft Caldwell Davenport Everett Fleming Granger Holloway "
    "Irving Jennings Kirkland Langford Mercer Nolan Osborne Pemberton Rutherford Sinclair "
    "Talbot Upton Vance Winthrop Ashby Beckett Crawford Drummond").split()
UNIVERSITIES = tuple(
    [f"University of {c}" for c in CITIES[:100]]
    + [f"{c} Institute of Technology" for c in CITIES[100:150]]
    + [f"{c} State University" for c in CITIES[150:200]]
    + [f"{f} College" for f in _UNIVERSITY_FOUNDERS]
    + [f"{f} University" for f in _UNIVERSITY_FOUNDERS])

MAJORS = tuple("""
Accounting|Aerospace Engineering|African Studies|Agricultural Science|Anthropology|Applied Mathematics
Archaeology|Architecture|Art History|Astronomy|Astrophysics|Biochemistry|Bioengineering|Biology
Biomedical Engineering|Biostatistics|Botany|Business Administration|Chemical Engineering|Chemistry
Civil Engineering|Classics|Cognitive Science|Communications|Comparative Literature|Computer Engineering
Computer Science|Construction Management|Criminology|Dance|Data Science|Dentistry|Ecology
Economics|Education|Electrical Engineering|English Literature|Environmental Science|Epidemiology
Film Studies|Finance|Fine Arts|Food Science|Forestry|French|Genetics|Geography
Geology|German|Graphic Design|Health Sciences|History|Hospitality Management|Human Resources
Industrial Design|Industrial Engineering|Information Systems|International Relations|Journalism
Kinesiology|Landscape Architecture|Latin American Studies|Law|Linguistics|Marine Biology|Marketing
Materials Science|Mathematics|Mechanical Engineering|Media Studies|Medicine|Meteorology|Microbiology
Music|Neuroscience|Nuclear Engineering|Nursing|Nutrition|Oceanography|Operations Research
Pharmacology|Philosophy|Photography|Physics|Political Science|Psychology|Public Health
Public Policy|Religious Studies|Robotics|Russian|Social Work|Sociology|Spanish|Statistics
Supply Chain Management|Theater|Urban Planning|Veterinary Science|Zoology
""".replace("\n", "|").strip("|").split("|"))

_EMPLOYER_STEMS = (
    "Apex Beacon Cobalt Delta Ember Falcon Granite Harbor Iris Juniper Keystone Lumen Meridian "
    "Nimbus Orion Pinnacle Quartz Redwood Summit Tidal Umber Vertex Willow Xenon Yonder Zenith")
_EMPLOYER_KINDS = "Systems Labs Foods Motors Energy Health Logistics Media Capital Robotics"
EMPLOYERS = tuple(f"{s} {k}" for s in _EMPLOYER_STEMS.split() for k in _EMPLOYER_KINDS.split())
# Each employer sits in one city for good (the paper's "company city" is a function of the
# company); drawn once from a fixed seed so the map never changes between runs.
_rng = random.Random("bioS employer cities")
EMPLOYER_CITY = {e: _rng.choice(CITIES) for e in EMPLOYERS}
del _rng

assert len(set(CITIES)) == len(CITIES) == 200
assert len(set(UNIVERSITIES)) == len(UNIVERSITIES) == 300
assert len(set(MAJORS)) == len(MAJORS) == 100
assert len(EMPLOYERS) == 260
assert len(FIRST_NAMES) == 400 and len(MIDDLE_NAMES) == 400 and len(LAST_NAMES) == 1000
