"""Ordinary words that must never be "corrected" into a watched name by the fuzzy matcher.

Fuzzy matching turns an unknown token into the nearest watched token within a small edit
distance. Many legitimate chemicals and trade words sit within that distance of a watched name
(nitromethane/nitroethane, piperazine/piperidine, ephedra/ephedrine, iodide/iodine); a token in
this set is taken as written. Tokens of the watchlist's own names, not-names and benign-context
words are protected automatically; this list adds the common neighbours from ordinary trade.
"""

from __future__ import annotations

_WORDS = """
    piperazine piperazina piperine piperina pyridine piridina pyrimidine pyrrolidine pirrolidina
    piperonal piperidinol morpholine morfolina ethylamine etilamina dimethylamine dimetilamina
    trimethylamine trimetilamina diethylamine triethylamine trietilamina propylamine butylamine
    isopropylamine methylamines ethylamines benzylamine bencilamina phenylalanine fenilalanina
    alanine alanina amines aminas nitromethane nitrometano nitropropane nitroethanol
    nitrobenzene nitrobenceno ephedra ephedrae efedra phenylephrine fenilefrina ephedrone iodide
    iodate iodides yoduro yodato iodized iodised iodoform bromide bromuro bromine bromo
    bromobenzene chloride chlorides cloruro chlorine cloro acetate acetato acetates acetone
    acetona acetonitrile acetonitrilo acetylene acetileno peracetic peracetico anhydride
    anhidrido propionate propionato propionates propanol propanal propane propano propylene
    propileno phenylacetylene phenylacetate phenol fenol phenolic fenolico phenyl fenil
    phenylene polyphenylene polyaniline dimethylaniline dimetilanilina chloroaniline
    nitroaniline toluidine benzene benceno benzoic benzoico benzoate benzoato benzyl bencilo
    benzylic benzocaine benzophenone benzonitrile cinnamaldehyde anisaldehyde vanillin
    vainillina salicylaldehyde formamide formamida dimethylformamide dimetilformamida
    dimethylacetamide acetamide acetamida methanol metanol ethanol etanol methane metano ethane
    etano methyl metil ethyl etil methacrylate metacrilato acrylate acrilato acrylic acrilico
    phosphorous phosphoric fosforico phosphate fosfato phosphite fosfito phosphide hydrochloric
    clorhidrico hydrobromic hydrofluoric sulfuric sulfurico nitric nitrico hydride hidruro
    borohydride hydroxide hidroxido peroxide peroxido fentanest pentane pentano hexane hexano
    heptane heptano octane octano caffeine cafeina codeine codeina morphine morfina cocaine
    cocaina lidocaine lidocaina procaine procaina paracetamol acetaminophen ibuprofen aspirin
    aspirina alanine glycine glicina lysine lisina proline prolina creatine creatina vitamin
    vitamina ascorbic ascorbico calcium calcio sodium sodio potassium potasio resin resina
    resins polymer polimero plastic plastico pellets granules granulos machine machines maquina
    maquinas machinery maquinaria press presses prensa prensas printing imprenta hydraulic
    hidraulica tablets tabletas tablet tableta capsules capsulas cotton algodon polyester
    poliester fabric fabrics textile textil garments prendas
"""

PROTECTED_WORDS: frozenset[str] = frozenset(_WORDS.split())
